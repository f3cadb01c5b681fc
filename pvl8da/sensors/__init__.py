"""Sensor readers and writers: Landsat-8/9 MTL, quality bands and scenes; Proba-V Level-2A products."""
