"""EvaluateDA: cloud detection on Proba-V products with and without domain adaptation, against reference masks.

Methods compared per product and overall (pixels pooled): the operational SM cloud mask, the cloud
U-Net on the raw Proba-V bands, and the U-Net on the bands adapted by each PV -> LU generator.
Reference masks come from a GeoTIFF (0 clear, 1 cloud, 255 or the file's nodata: no data) on any
grid, or from a labelled Landsat-as-Proba-V product (``CM_RESAMPLED`` binarised at 0.5) of a
co-located scene. Scores (``pvl8da.evaluation.metrics``) go to a CSV, a Markdown table and a bar chart.
"""
from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import rasterio.warp
from rasterio.enums import Resampling

from pvl8da.storage.atomic import atomic_path
from pvl8da.errors import InputError
from pvl8da.inference.products import TilePredictor, predict_product, predict_window
from pvl8da.evaluation.metrics import METRIC_NAMES, Confusion, confusion, markdown_table, percent, scores
from pvl8da.datasets.pairs import coregister
from pvl8da.sensors.probav import CRS, PV_BANDS, LandsatAsProbaVProduct, ProbaVProduct
from pvl8da.storage.published import resolve_weights

log = logging.getLogger(__name__)

SM_METHOD = "SM (operational)"
RAW_METHOD = "U-Net (no adaptation)"
LANDSAT_METHOD = "U-Net on Landsat-as-PV"


@dataclass(frozen=True)
class EvalItem:
    """A Proba-V product and its reference: a GeoTIFF mask or a labelled Landsat-as-Proba-V product."""

    pvimage: Path
    reference: Path


@dataclass
class Reference:
    """Reference clouds on a window ``rows, cols`` of a Proba-V product."""

    cloud: np.ndarray
    valid: np.ndarray
    rows: slice
    cols: slice
    landsat_toa: np.ndarray | None = None


def reference_from_geotiff(pv: ProbaVProduct, path: str | os.PathLike) -> Reference:
    """A GeoTIFF cloud mask resampled (nearest) onto the whole Proba-V grid."""
    path = Path(path)
    try:
        with rasterio.open(path) as src:
            mask = src.read(1)
            nodata = 255 if src.nodata is None else src.nodata
            dst = np.full(pv.shape, 255, np.uint8)
            rasterio.warp.reproject(np.where(mask == nodata, 255, mask != 0).astype(np.uint8), dst,
                                    src_transform=src.transform, src_crs=src.crs, dst_transform=pv.transform,
                                    dst_crs=CRS, resampling=Resampling.nearest, src_nodata=255, dst_nodata=255)
    except rasterio.errors.RasterioIOError as err:
        raise InputError(f"{path}: cannot read the reference mask ({err})") from err
    return Reference(dst == 1, dst != 255, slice(0, pv.shape[0]), slice(0, pv.shape[1]))


def reference_from_landsat(pv: ProbaVProduct, path: str | os.PathLike) -> Reference:
    """The labels of a co-located Landsat-as-Proba-V product co-registered onto the Proba-V grid
    (with its bands, on which the U-Net's Landsat-domain accuracy is measured)."""
    with LandsatAsProbaVProduct(path) as lu:
        if "CM_RESAMPLED" not in lu.file:
            raise InputError(f"{path}: no CM_RESAMPLED labels to evaluate against")
        reg = coregister(pv, lu)
    rows = slice(reg.row0, reg.row0 + reg.valid.shape[0])
    cols = slice(reg.col0, reg.col0 + reg.valid.shape[1])
    return Reference(reg.clouds >= 0.5, reg.valid, rows, cols, landsat_toa=reg.lu)


def load_reference(pv: ProbaVProduct, path: str | os.PathLike) -> Reference:
    """A reference from a GeoTIFF (``.tif``/``.tiff``) or a Landsat-as-Proba-V HDF5 product."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: reference mask for {pv.path} not found")
    if path.suffix.lower() in (".tif", ".tiff"):
        return reference_from_geotiff(pv, path)
    return reference_from_landsat(pv, path)


def predict_product_window(pv: ProbaVProduct, window: tuple[slice, slice], predictor: TilePredictor) -> np.ndarray:
    """Cloud probability of a window of a product as InferenceDA computes it on the whole product: the tiles
    start on the product's U-Net grid and read their halo from the product around the window."""
    return predict_product(pv, predictor, window)[1]


def evaluate_product(item: EvalItem, cloud_model, generators: dict) -> list[dict]:
    """Confusion counts of every method on one product (rows: product, method, tp, fp, fn, tn).

    Predictions go through InferenceDA's tiled predictor, so each method is scored on exactly what
    InferenceDA would write (adapted bands clipped and quantised to the product's DN grid).
    """
    with ProbaVProduct(item.pvimage) as pv:
        ref = load_reference(pv, item.reference)
        window = (ref.rows, ref.cols)
        invalid = pv.invalid(window)
        valid = ref.valid & ~invalid
        if not valid.any():
            raise InputError(f"{item.pvimage}: no pixel valid in both the product and the reference "
                             f"{item.reference}")
        scale, offset = zip(*(pv.scale_offset(b) for b in PV_BANDS))

        def clouds(generator) -> np.ndarray:
            predictor = TilePredictor(cloud_model, generator, None, scale, offset)
            return predict_product_window(pv, window, predictor) >= 0.5

        predictions = {SM_METHOD: pv.cloud_mask_sm(window), RAW_METHOD: clouds(None)}
        for name, generator in generators.items():
            predictions[f"U-Net + {name}"] = clouds(generator)
    if ref.landsat_toa is not None:
        lu_predictor = TilePredictor(cloud_model, None, None)
        predictions[LANDSAT_METHOD] = predict_window(lu_predictor, ref.landsat_toa, ~ref.valid)[1] >= 0.5
    product = Path(item.pvimage).name
    rows = []
    for method, pred in predictions.items():
        counts = confusion(pred, ref.cloud, valid)
        rows.append({"product": product, "method": method, **counts.as_dict()})
        log.info("%s %s: %s", product, method, _short(scores(counts)))
    return rows


def _short(s: dict) -> str:
    return ", ".join(f"{k}={v:.3f}" for k, v in s.items())


def score_rows(count_rows: list[dict]) -> list[dict]:
    """Per-product rows and an ``overall`` row per method (pixels pooled), each with METRIC_NAMES added."""
    out = []
    methods = list(dict.fromkeys(r["method"] for r in count_rows))
    for r in count_rows:
        c = Confusion(r["tp"], r["fp"], r["fn"], r["tn"])
        out.append({**r, "pixels": c.total, **scores(c)})
    for method in methods:
        total = sum((Confusion(r["tp"], r["fp"], r["fn"], r["tn"]) for r in count_rows if r["method"] == method),
                    Confusion())
        out.append({"product": "overall", "method": method, **total.as_dict(), "pixels": total.total,
                    **scores(total)})
    return out


def load_models(cloud_weights: str | os.PathLike, dagans: dict[str, str | os.PathLike],
                weights_base_url: str | None = None):
    """The cloud U-Net and the named PV -> LU generators; any weights may be ``"published"``
    (:mod:`pvl8da.storage.published`, fetched from ``weights_base_url``)."""
    from pvl8da.models import da as models

    cloud_weights = resolve_weights(cloud_weights, "cloud_detection", base_url=weights_base_url)
    dagans = {name: resolve_weights(path, "dagans", base_url=weights_base_url) for name, path in dagans.items()}
    missing = [str(p) for p in [cloud_weights, *dagans.values()] if not Path(p).is_file()]
    if missing:
        raise InputError(f"model weights not found: {', '.join(missing)}")
    return models.load_da_models(cloud_weights, dagans)


def write_reports(rows: list[dict], out_folder: str | os.PathLike) -> dict[str, Path]:
    """``evaluation.md``, ``evaluation.png`` (overall bars) and, last, ``evaluation.csv`` in ``out_folder``."""
    from pvl8da.plots.evaluation import evaluation_bar_chart

    out_folder = Path(out_folder)
    out_folder.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out_folder / "evaluation.csv", "md": out_folder / "evaluation.md",
             "png": out_folder / "evaluation.png"}
    fields = ["product", "method", *METRIC_NAMES, "pixels", "tp", "fp", "fn", "tn"]
    with atomic_path(paths["md"]) as tmp:
        tmp.write_text(score_table(rows))
    evaluation_bar_chart([r for r in rows if r["product"] == "overall"], paths["png"])
    with atomic_path(paths["csv"]) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return paths


def score_table(rows: list[dict]) -> str:
    """Markdown table: overall first, then per product; scores in percent (kappa × 100)."""
    ordered = [r for r in rows if r["product"] == "overall"] + [r for r in rows if r["product"] != "overall"]
    return markdown_table(["product", "method", "OA", "kappa", "commission", "omission", "F1", "pixels"],
                          ([r["product"], r["method"], *(percent(r[k]) for k in METRIC_NAMES), r["pixels"]]
                           for r in ordered), right_aligned=6)


def evaluate_da(items: list[EvalItem], cloud_weights: str | os.PathLike, dagans: dict[str, str | os.PathLike],
                out_folder: str | os.PathLike, weights_base_url: str | None = None) -> dict[str, Path]:
    """Evaluate every method on every product and write the reports; returns their paths."""
    if not items:
        raise InputError("no Proba-V product to evaluate")
    cloud, generators = load_models(cloud_weights, dagans, weights_base_url)
    counts = [row for item in items for row in evaluate_product(item, cloud, generators)]
    return write_reports(score_rows(counts), out_folder)
