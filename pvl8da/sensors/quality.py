"""Landsat-8/9 quality bands of the three product generations: pre-collection and Collection 1 ``BQA``,
Collection 2 ``QA_PIXEL``, decoded into fill, cloud, cirrus, cloud-shadow and snow masks.

Bit layouts (USGS; ``../shared/realdata/README.md``):

- pre-collection ``BQA``: bit 0 fill, 1 dropped frame, 2 terrain occlusion; 2-bit confidences
  (00 not determined, 01 low, 10 medium, 11 high) in bits 4-5 water, 10-11 snow/ice, 12-13 cirrus,
  14-15 cloud. There is no cloud *bit* and no cloud-shadow field.
- Collection 1 ``BQA``: bit 0 fill, 1 terrain occlusion, 2-3 saturation, 4 cloud (CFMask), 5-6 cloud
  confidence, 7-8 cloud-shadow confidence, 9-10 snow/ice confidence, 11-12 cirrus confidence.
- Collection 2 ``QA_PIXEL``: bit 0 fill, 1 dilated cloud, 2 cirrus, 3 cloud, 4 cloud shadow, 5 snow,
  6 clear, 7 water, then 2-bit confidences: 8-9 cloud, 10-11 shadow, 12-13 snow, 14-15 cirrus.

A confidence counts as set when it is medium or high, i.e. when the high bit of its pair is set.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PRE_COLLECTION, COLLECTION_1, COLLECTION_2 = 0, 1, 2
GENERATIONS = (PRE_COLLECTION, COLLECTION_1, COLLECTION_2)
GENERATION_NAMES = {PRE_COLLECTION: "pre-collection", COLLECTION_1: "Collection 1", COLLECTION_2: "Collection 2"}
#: File name suffix of each generation's quality band: ``<ID>_BQA.TIF`` or ``<ID>_QA_PIXEL.TIF``.
QUALITY_BAND = {PRE_COLLECTION: "BQA", COLLECTION_1: "BQA", COLLECTION_2: "QA_PIXEL"}

# Bit numbers: a single flag bit, or the high bit of a medium-or-high confidence pair.
_BITS = {
    PRE_COLLECTION: {"cloud": None, "cloud_confidence": 15, "cirrus": 13, "shadow": None, "snow": 11, "water": 5},
    COLLECTION_1: {"cloud": 4, "cloud_confidence": 6, "cirrus": 12, "shadow": 8, "snow": 10, "water": None},
    COLLECTION_2: {"cloud": 3, "cloud_confidence": 9, "cirrus": 2, "shadow": 4, "snow": 5, "water": 7},
}


def _check_generation(collection: int) -> None:
    if collection not in GENERATIONS:
        raise ValueError(f"unknown Landsat product generation {collection!r}; expected 0 (pre-collection), 1 or 2")


def _bit(qa: np.ndarray, bit: int | None) -> np.ndarray | None:
    return None if bit is None else ((qa >> bit) & 1).astype(bool)


@dataclass(frozen=True)
class QualityMasks:
    """Boolean masks decoded from a quality band; ``None`` where the generation has no such field.

    ``cloud`` is the generation's cloud flag (pre-collection has none: it is ``None`` there, and
    ``cloud_confidence`` is cloud confidence medium or high). Every mask other than ``fill`` is False on fill.
    """

    fill: np.ndarray
    cloud: np.ndarray | None
    cloud_confidence: np.ndarray
    cirrus: np.ndarray
    shadow: np.ndarray | None
    snow: np.ndarray
    water: np.ndarray | None


def decode(qa: np.ndarray, collection: int) -> QualityMasks:
    """Decode a BQA (pre-collection, Collection 1) or QA_PIXEL (Collection 2) array."""
    _check_generation(collection)
    qa = np.asarray(qa).astype(np.uint16, copy=False)
    fill = (qa & 1).astype(bool)
    masks = {}
    for name, bit in _BITS[collection].items():
        mask = _bit(qa, bit)
        if mask is not None:
            mask &= ~fill
        masks[name] = mask
    return QualityMasks(fill=fill, **masks)


def cloud_flag(qa: np.ndarray, collection: int) -> np.ndarray:
    """The operational cloud flag, fill excluded: Collection 1 BQA bit 4, Collection 2 QA_PIXEL bit 3;
    pre-collection cloud or cirrus confidence medium or high (bit 15 or bit 13, the FCD paper's baseline)."""
    masks = decode(qa, collection)
    if collection == PRE_COLLECTION:
        return masks.cloud_confidence | masks.cirrus
    return masks.cloud


def encode(collection: int, fill: np.ndarray, cloud: np.ndarray, shadow: np.ndarray, snow: np.ndarray,
           water: np.ndarray) -> np.ndarray:
    """Quality-band values of the given generation for the given classes (synthetic scenes).

    Clear pixels get low confidences, flagged ones high; pre-collection has no shadow field.
    """
    _check_generation(collection)
    if collection == PRE_COLLECTION:
        qa = np.full(fill.shape, (1 << 12) | (1 << 14), np.uint16)  # 20480: cirrus and cloud low
        qa[water] |= 3 << 4
        qa[~water] |= 1 << 4
        qa[snow & ~cloud] |= 3 << 10
        qa[cloud] |= 3 << 14
    elif collection == COLLECTION_1:
        qa = np.full(fill.shape, (1 << 5) | (1 << 7) | (1 << 9) | (1 << 11), np.uint16)  # 2720: clear
        qa[cloud] |= (1 << 4) | (3 << 5)
        qa[shadow] |= 3 << 7
        qa[snow] |= 3 << 9
    else:
        qa = np.full(fill.shape, (1 << 8) | (1 << 10) | (1 << 12) | (1 << 14), np.uint16)
        clear = ~(cloud | shadow | snow)
        qa[clear] |= 1 << 6
        qa[water & clear] |= 1 << 7
        qa[cloud] |= (1 << 1) | (1 << 3) | (3 << 8)
        qa[shadow & ~cloud] |= (1 << 4) | (3 << 10)
        qa[snow & ~cloud] |= (1 << 5) | (3 << 12)
    qa[fill] = 1
    return qa
