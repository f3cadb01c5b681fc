"""pvl8da: cross-sensor cloud detection (Landsat-8 -> Proba-V domain adaptation, and FCD)."""
import logging

logging.getLogger(__name__).addHandler(logging.NullHandler())

__version__ = "0.1.0"
