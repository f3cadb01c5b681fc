"""Atomic writes of Keras weights and JSON files (Keras insists on the ``.weights.h5`` suffix)."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import keras

from pvl8da.atomic import atomic_path


def save_weights_atomic(model: keras.Model, path: str | Path) -> Path:
    """``model.save_weights`` to a temporary ``*.weights.h5`` beside ``path``, then rename into place."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial.weights.h5", dir=path.parent)
    os.close(fd)
    os.unlink(tmp)
    try:
        model.save_weights(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def save_json_atomic(obj: Any, path: str | Path) -> Path:
    """Write ``obj`` as indented JSON atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True))
    return path


def load_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())
