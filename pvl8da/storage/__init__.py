"""Files on disk and on the network: atomic writes, HDF5 writing, provenance, downloads, published weights."""
