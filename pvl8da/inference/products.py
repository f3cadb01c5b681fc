"""Tiled inference on Proba-V and Landsat-as-Proba-V products (SPEC §6).

A product of any size is streamed through the tiler (:mod:`pvl8da.inference.tiling`) in square tiles on
the U-Net's pooling grid of 4, each with a halo of 32 px covering the receptive field of generator + U-Net
(29 px), in one fixed shape. The tile size is fitted to the product (the fewest padded pixels under a
per-device maximum). Results are written window by window into a copy of the input; memory stays bounded.
"""
from __future__ import annotations

import logging
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from tqdm import tqdm

from pvl8da import runtime
from pvl8da.storage import provenance
from pvl8da.storage.atomic import atomic_outputs, require_free_space, scratch_dir
from pvl8da.errors import InputError
from pvl8da.storage.hdf5 import hdf5_writer
from pvl8da.sensors.probav import PV_BANDS, LandsatAsProbaVProduct, ProbaVProduct, band_path, copy_product
from pvl8da.storage.published import resolve_weights
from pvl8da.inference.tiling import (HALO, Reader, Tiling, fitted_tile, predict_tiled, predict_tiles,  # noqa: F401
                                    read_padded, tile_origins, tiles)

log = logging.getLogger(__name__)

CM_DA = "CM_PVDAGANS"
CM_UNET = "CM_UNET"
COG_CLEAR, COG_CLOUD, COG_NODATA = 0, 1, 255
#: Largest tile core per device. On a CPU, 3000² in 36 tiles of 564² (core 500) rather than 25 of 664²: the
#: same speed in float32, 5 % faster in bfloat16, 0.1-0.25 GB less memory (1.06-1.09 GB peak in float32 from
#: the command line, of which importing TensorFlow takes 0.54 GB); a GPU takes batches of large tiles.
MAX_TILE_CPU, MAX_TILE_GPU, BATCH_GPU = 512, 1024, 4
#: Bytes per pixel the outputs add to a copy of the input: float32 probability (compressed) and the COG.
OUTPUT_BYTES_PER_PIXEL = 4


def default_tiling(shape: tuple[int, int] | None = None) -> Tiling:
    """Batches of large tiles on a GPU, single tiles on a CPU; fitted to ``shape`` when given."""
    gpu = runtime.has_gpu()
    max_tile = MAX_TILE_GPU if gpu else MAX_TILE_CPU
    tile = fitted_tile(shape, max_tile) if shape is not None else max_tile
    return Tiling(tile=tile, batch=BATCH_GPU if gpu else 1)


class TilePredictor:
    """Generator (optional) then cloud U-Net on batches of fixed-shape tiles, one compiled graph, on the running
    Keras backend.

    As the reference does, the adapted reflectance is clipped to [0, 2] and set to 0 on invalid
    pixels before cloud detection; with ``scale``/``offset`` (per band) it is also quantised to the
    product's DN grid, so the cloud mask is the U-Net's output on the bands as written. ``precision``: the
    networks' compute dtype (:data:`pvl8da.runtime.PRECISIONS`, checked against the hardware); clipping,
    quantisation and the outputs stay float32.
    """

    def __init__(self, unet, generator=None, tiling: Tiling | None = None,
                 scale: tuple[float, ...] | None = None, offset: tuple[float, ...] | None = None,
                 precision: str = "float32"):
        from keras import ops

        from pvl8da.models.da import InstanceNormalization
        from pvl8da.models.folded import folded_graph

        self.tiling = tiling or default_tiling()
        self.precision = runtime.check_precision(precision)
        size = self.tiling.size

        def fast(model):
            if any(isinstance(layer, InstanceNormalization) for layer in model.layers):
                log.warning("%s uses instance normalisation: statistics are per tile, computed in float32",
                            model.name)
                return lambda x: model(ops.cast(x, "float32"), training=False)
            return folded_graph(model, self.precision)

        clouds_fn = fast(unet)
        adapt_fn = fast(generator) if generator is not None else None
        quantise = scale is not None
        scale_c = np.asarray(scale if quantise else [1.0] * 4, np.float32)
        offset_c = np.asarray(offset if offset is not None else [0.0] * 4, np.float32)

        def run(x):
            image, invalid = x[..., :4], x[..., 4:] > 0.5
            if adapt_fn is not None:
                image = ops.clip(ops.cast(adapt_fn(image), "float32"), 0.0, 2.0)
                if quantise:
                    image = (ops.round(image * scale_c + offset_c) - offset_c) / scale_c
                image = ops.where(invalid, 0.0, image)
            return image, ops.cast(clouds_fn(image), "float32")[..., 0]

        self._fn = runtime.compile_batch_fn(run, (None, size, size, 5))

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, size, size, 5) reflectance + invalid flag → adapted reflectance (B, size, size, 4) and
        cloud probability (B, size, size)."""
        return self._fn(x)


def predict_window(predictor: TilePredictor, toa: np.ndarray, invalid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Adapted reflectance (H, W, 4) and cloud probability (H, W) of an in-memory window, tiled exactly as
    InferenceDA tiles a product (invalid pixels filled with 0, reflect padding, aligned tile offsets)."""
    x = np.concatenate([np.where(invalid[..., None], 0.0, toa), invalid[..., None]], axis=-1).astype(np.float32)
    return predict_tiled(lambda b: _predict_valid_tiles(predictor, b), lambda rows, cols: x[rows, cols],
                         invalid.shape, predictor.tiling)


def product_reader(src: ProbaVProduct | LandsatAsProbaVProduct) -> Reader:
    """(rows, cols) → the product's TOA reflectance (0 where invalid) and its invalid flag, (h, w, 5) float32."""
    is_pv = isinstance(src, ProbaVProduct)

    def read(rows: slice, cols: slice) -> np.ndarray:
        dn = src.read_dn_all((rows, cols))
        x = np.empty(dn.shape[:2] + (5,), np.float32)
        toa = x[..., :4]
        toa[...] = src.toa_from_dn(dn)
        invalid = src.invalid_from(dn, src.read_sm((rows, cols)), toa) if is_pv else src.invalid_from(dn, toa)
        toa[invalid] = 0.0
        x[..., 4] = invalid
        return x

    return read


def _product_tiles(src: ProbaVProduct | LandsatAsProbaVProduct, predictor: TilePredictor,
                   window: tuple[slice, slice] | None = None):
    """Each tile of ``window`` (default: the whole product) with its input core (reflectance + invalid flag),
    adapted reflectance and cloud probability."""
    return predict_tiles(lambda b: _predict_valid_tiles(predictor, b), product_reader(src), src.shape,
                         predictor.tiling, window)


def predict_product(src: ProbaVProduct | LandsatAsProbaVProduct, predictor: TilePredictor,
                    window: tuple[slice, slice] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Adapted reflectance and cloud probability of ``window`` (default: the whole product), in memory, exactly
    as InferenceDA computes them on the whole product."""
    return predict_tiled(lambda b: _predict_valid_tiles(predictor, b), product_reader(src), src.shape,
                         predictor.tiling, window)


@dataclass
class InferenceOutputs:
    """Paths written by an inference run."""

    product: Path
    cog: Path
    quicklook: Path | None = None

    def paths(self) -> tuple[Path, ...]:
        """Every output, the product first (the one whose presence says the run is complete)."""
        return (self.product, self.cog) + ((self.quicklook,) if self.quicklook else ())


def cog_path(dest: str | Path) -> Path:
    """``<dest stem>_clouds.tif`` beside the destination product."""
    dest = Path(dest)
    return dest.with_name(f"{dest.stem}_clouds.tif")


def quicklook_path(dest: str | Path) -> Path:
    """``<dest stem>_quicklook.png`` beside the destination product."""
    dest = Path(dest)
    return dest.with_name(f"{dest.stem}_quicklook.png")


def infer_outputs(dest: str | Path, quicklook: bool = True) -> InferenceOutputs:
    """The files an inference run writes for the destination product ``dest``."""
    return InferenceOutputs(product=Path(dest), cog=cog_path(dest), quicklook=quicklook_path(dest) if quicklook else None)


def check_paths(src: str | Path, dest: str | Path, *weights: str | Path) -> None:
    """Clear errors, before anything is written, for bad input/destination/weight paths."""
    src, dest = Path(src), Path(dest)
    if not src.is_file():
        raise InputError(f"{src}: input product not found")
    if dest.is_dir():
        raise InputError(f"{dest}: the destination is an existing folder; give the output product's file name")
    if dest.resolve() == src.resolve() or (dest.exists() and os.path.samefile(src, dest)):
        raise InputError(f"{dest}: the destination is the input product; choose another path")
    if not dest.parent.is_dir():
        raise InputError(f"{dest}: destination folder {dest.parent} does not exist")
    for w in weights:
        if not Path(w).is_file():
            raise InputError(f"{w}: weights file not found")


def single_inter_op_thread() -> None:
    """Run TensorFlow's graphs with one inter-op thread, when its runtime has not started yet in this
    process. The tile graph is one chain of convolutions, each already spread over every core; a second
    inter-op thread only keeps more activations alive at once (3000² product, 664² tiles: peak memory
    1.61 → 1.34 GB at the same speed). Training keeps the default, which is 5 % faster there. Other
    backends: nothing to do."""
    if runtime.backend() != "tensorflow":
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        log.debug("TensorFlow is already running: its inter-op threads stay as they are")


def load_models(unet_weights: str | Path, generator_weights: str | Path | None = None):
    """The cloud U-Net and (optionally) the PV → LU generator with checked weights, the generator built with
    its own settings (:func:`pvl8da.models.da.load_da_models`)."""
    from pvl8da.models.da import load_da_models

    single_inter_op_thread()
    unet, generators = load_da_models(unet_weights, {} if generator_weights is None else {"pv2l8": generator_weights})
    return unet, generators.get("pv2l8")


def _predict_valid_tiles(predictor: TilePredictor, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``predictor(x)``, skipping the networks for tiles without a single valid pixel (their outputs are
    written as invalid whatever the networks say): zeros stand in for them."""
    todo = ~np.all(x[..., 4] > 0.5, axis=(1, 2))
    if todo.all():
        return predictor(x)
    adapted = np.zeros(x.shape[:3] + (4,), np.float32)
    clouds = np.zeros(x.shape[:3], np.float32)
    if todo.any():
        adapted[todo], clouds[todo] = predictor(x[todo])
    return adapted, clouds


def _run_tiles(src, out, mask_tif, predictor: TilePredictor, cm_name: str, write_bands: bool,
               samples=None) -> None:
    """Predict every tile of ``src`` and write bands, cloud probability and the uint8 mask window by window
    (and keep the quicklook's pixels in ``samples``, a QuicklookSamples)."""

    def write(tile, block, adapted, clouds):
        rows, cols = tile.rows, tile.cols
        inv = block[..., 4] > 0.5
        cm = np.where(inv, -1.0, clouds).astype(np.float32)
        out.write(cm_name, cm, (rows, cols))
        if write_bands:
            for i, band in enumerate(PV_BANDS):
                out.write_dn(band, out.dn_from_toa(band, adapted[..., i], inv), (rows, cols))
        mask = np.where(inv, COG_NODATA, np.where(cm >= 0.5, COG_CLOUD, COG_CLEAR)).astype(np.uint8)
        window = rasterio.windows.Window(cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start)
        mask_tif.write(mask, 1, window=window)
        if samples is not None:
            samples.add(rows.start, cols.start, block[..., :4], adapted, cm, inv)

    count = len(tiles(src.shape, predictor.tiling))
    writes: deque = deque()
    with ThreadPoolExecutor(max_workers=1) as writer, \
            tqdm(total=count, desc=f"{src.path.name}", unit="tile", disable=None) as bar:
        for tile, block, (adapted, clouds) in _product_tiles(src, predictor):
            if len(writes) == predictor.tiling.batch:  # one batch written while the next is predicted
                writes.popleft().result()
            writes.append(writer.submit(write, tile, block, adapted, clouds))
            bar.update(1)
        for w in writes:
            w.result()


def run_inference(src_path: str | Path, dest: str | Path, unet_weights: str | Path,
                  generator_weights: str | Path | None = None, *, landsat: bool = False,
                  tiling: Tiling | None = None, quicklook: bool = True, precision: str = "float32",
                  weights_base_url: str | None = None, record: dict | None = None) -> InferenceOutputs:
    """Cloud detection (after PV → LU adaptation when ``generator_weights`` is given) on a product.

    Writes ``dest``, a copy of the input with the adapted TOA bands (when adapting) and the cloud
    probability (``CM_PVDAGANS`` when adapting, else ``CM_UNET``), the mask COG and, for Proba-V
    products, a quicklook PNG. The input is never modified; outputs appear only on success.
    Either weights may be ``"published"``: the paper's file, fetched into the user's cache from
    ``weights_base_url`` (see :mod:`pvl8da.storage.published`). ``record``: the provenance the product keeps
    (:mod:`pvl8da.storage.provenance`). ``precision``: the networks' arithmetic (:class:`TilePredictor`). All
    outputs are committed together at the end.
    """
    src_path, dest = Path(src_path), Path(dest)
    unet_weights = resolve_weights(unet_weights, "cloud_detection", base_url=weights_base_url)
    if generator_weights is not None:
        generator_weights = resolve_weights(generator_weights, "dagans", base_url=weights_base_url)
    check_paths(src_path, dest, unet_weights, *([generator_weights] if generator_weights else []))
    unet, generator = load_models(unet_weights, generator_weights)
    cm_name = CM_DA if generator is not None else CM_UNET
    product_cls = LandsatAsProbaVProduct if landsat else ProbaVProduct
    with_quicklook = quicklook and not landsat
    outputs = infer_outputs(dest, with_quicklook)
    with ExitStack() as stack:
        src = stack.enter_context(product_cls(src_path))
        tiling = tiling or default_tiling(src.shape)
        src.set_chunk_cache(tiling.size)  # one row of tiles with its halo: no chunk decompressed twice
        scale, offset = zip(*(src.scale_offset(b) for b in PV_BANDS))
        predictor = TilePredictor(unet, generator, tiling, scale, offset, precision)
        require_free_space(dest.parent, src_path.stat().st_size + OUTPUT_BYTES_PER_PIXEL * np.prod(src.shape),
                           f"the output of {src_path.name}")
        tmp, tmp_cog, *tmp_quicklook = stack.enter_context(atomic_outputs(*outputs.paths()))
        recreate = tuple(band_path(b) for b in PV_BANDS) if generator is not None else ()
        with hdf5_writer(tmp) as f:
            copy_product(src.file, f, recreate)
            if record is not None:
                provenance.write_hdf5(f, record)
        out = stack.enter_context(product_cls(tmp, "r+"))
        out.set_chunk_cache(tiling.size)
        out.create_dataset(cm_name, np.float32, -1.0, DESCRIPTION=_describe(cm_name, unet_weights, generator_weights))
        plain_tif = stack.enter_context(scratch_dir()) / "clouds.tif"
        profile = dict(driver="GTiff", width=src.shape[1], height=src.shape[0], count=1, dtype="uint8",
                       crs=src.crs, transform=src.transform, nodata=COG_NODATA, tiled=True,
                       blockxsize=256, blockysize=256, compress="deflate")
        samples = None
        if with_quicklook:
            from pvl8da.plots.inference import QuicklookSamples, plot_inference

            samples = QuicklookSamples(src.shape)
        with rasterio.open(plain_tif, "w", **profile) as mask_tif:
            _run_tiles(src, out, mask_tif, predictor, cm_name, write_bands=generator is not None, samples=samples)
        # the COG and the product's last writes in a thread, beside the quicklook (GDAL and HDF5 compress
        # without holding the interpreter): reading, writing and drawing 3000² without the networks 3.5 → 3.1 s
        def finish() -> None:
            write_cog(plain_tif, tmp_cog, outputs.cog)
            out.close()

        with ThreadPoolExecutor(max_workers=1) as finisher:
            finished = finisher.submit(finish)
            if samples is not None:
                title = f"{src_path.name} ({src.start_time:%Y-%m-%d %H:%M})"
                plot_inference(samples, src.cloud_mask_sm(samples.window), title, tmp_quicklook[0], cm_name)
            finished.result()
    log.info("wrote %s and %s", dest, outputs.cog)
    return outputs


def write_cog(plain_tif: Path, tmp_cog: Path, cog: Path) -> None:
    """Copy the tiled mask GeoTIFF into a Cloud-Optimized GeoTIFF (``cog`` names it in errors)."""
    try:
        rasterio.shutil.copy(plain_tif, tmp_cog, driver="COG", compress="DEFLATE", overview_resampling="nearest")
    except Exception as err:  # GDAL's write errors (CPLE_*) have no public base class
        raise OSError(f"{cog}: cannot write the cloud-mask COG ({err}); is the disk full?") from err


def _describe(cm_name: str, unet_weights, generator_weights) -> str:
    what = "cloud probability of the U-Net"
    if generator_weights is not None:
        what += f" on the PV->LU adapted bands (generator {Path(generator_weights).name})"
    return f"{cm_name}: {what}, weights {Path(unet_weights).name}; -1 invalid"


def infer_da(pvimage: str | Path, dest: str | Path, cloud_detection_weights: str | Path,
             dagans_weights: str | Path | None, adaptation: bool = True, **kwargs) -> InferenceOutputs:
    """InferenceDA on a Proba-V L2A product (``adaptation=False``: cloud model on the raw bands); options
    (``weights_base_url``, ``tiling``, ``quicklook``, ``precision``) as in :func:`run_inference`."""
    return run_inference(pvimage, dest, cloud_detection_weights, dagans_weights if adaptation else None, **kwargs)


def infer_clouds(image: str | Path, dest: str | Path, cloud_detection_weights: str | Path,
                 **kwargs) -> InferenceOutputs:
    """InferenceClouds: the cloud model on a Landsat-as-Proba-V product, writing ``CM_UNET``; options as in
    :func:`run_inference`."""
    return run_inference(image, dest, cloud_detection_weights, None, landsat=True, quicklook=False, **kwargs)


__all__ = ["Tiling", "TilePredictor", "InferenceOutputs", "run_inference", "infer_da", "infer_clouds",
           "cog_path", "quicklook_path", "read_padded", "tile_origins", "default_tiling", "fitted_tile", "HALO",
           "predict_window", "predict_product", "product_reader", "load_models"]
