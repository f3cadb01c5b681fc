"""Proba-V Level-2A products (HDF5): band names, MAPPING attribute and geotransform."""
from __future__ import annotations

import numpy as np
from affine import Affine

PV_BANDS = ("BLUE", "RED", "NIR", "SWIR")


def mapping_from_transform(transform: Affine) -> np.ndarray:
    """The MAPPING attribute (byte strings) of a north-up lat/lon grid with this transform."""
    items = [
        "Geographic Lat/Lon", "0.5", "0.5",
        repr(float(transform.c)), repr(float(transform.f)),
        repr(float(transform.a)), repr(float(-transform.e)),
        "WGS84", "Degrees",
    ]
    return np.array([s.encode() for s in items])


def transform_from_mapping(mapping) -> Affine:
    """Affine transform (upper-left corner, degrees) from a MAPPING attribute: items 3-6 are
    upper-left longitude, upper-left latitude, x step and y step."""
    items = [m.decode() if isinstance(m, bytes) else str(m) for m in np.atleast_1d(mapping)]
    lon0, lat0, xstep, ystep = (float(v) for v in items[3:7])
    return Affine(xstep, 0.0, lon0, 0.0, -ystep, lat0)
