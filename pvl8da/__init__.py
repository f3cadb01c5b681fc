"""pvl8da: cross-sensor cloud detection (Landsat-8 -> Proba-V domain adaptation, and FCD)."""
import logging
import os

# oneDNN kernels (about 2x faster convolutions on CPU); set here, before any module imports TensorFlow.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

logging.getLogger(__name__).addHandler(logging.NullHandler())

__version__ = "0.1.0"
