"""The one tiler behind every whole-image prediction (InferenceDA/InferenceClouds, EvaluateDA, FCD scenes).

An image (or a window of it) is cut into square tile cores whose origins lie on the model's alignment grid
(the DA U-Net pools twice: 4; the FCD networks downsample by their own factor). Each core is read with a
halo covering the model's receptive field, always as a block of the same (size, size) shape, so one
compiled graph serves every tile. Two edge policies: ``reflect`` (SPEC §6, the DA models) mirrors the halo
past the image edge; ``inside`` (the FCD networks) slides the block inside the image, so the network sees
the image edge as whole-image prediction does (the image reflect-padded at its end to the alignment grid,
and to the block where the image is smaller). Blocks are read one batch ahead in a thread while the model
runs on the current batch; any channel count.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from pvl8da.errors import InputError

#: Halo of the DA networks: generator + U-Net see 29 px.
HALO = 32

Reader = Callable[[slice, slice], np.ndarray]
#: (B, size, size, C) blocks → a tuple of (B, size, size, …) outputs.
BatchFn = Callable[[np.ndarray], tuple[np.ndarray, ...]]


@dataclass(frozen=True)
class Tiling:
    """Tile core, halo and alignment (core and halo multiples of ``align``), tiles per batch, edge policy."""

    tile: int = 512
    halo: int = HALO
    batch: int = 1
    align: int = 4
    edge: str = "reflect"

    def __post_init__(self):
        if (self.align < 1 or self.tile <= 0 or self.tile % self.align or self.halo < 0
                or self.halo % self.align or self.batch < 1 or self.edge not in ("reflect", "inside")):
            raise InputError(f"tiling {self}: tile and halo must be multiples of {self.align} (tile > 0), "
                             "batch ≥ 1, edge 'reflect' or 'inside'")

    @property
    def size(self) -> int:
        """Side of the padded tile fed to the network."""
        return self.tile + 2 * self.halo

    def block_start(self, origin: int, n: int) -> int:
        """First row (or column) of the block of the core at ``origin`` on an axis of ``n`` pixels."""
        if self.edge == "reflect":
            return origin - self.halo
        return max(0, min(origin - self.halo, -(-n // self.align) * self.align - self.size))


@dataclass(frozen=True)
class Tile:
    """A tile core at (r0, c0) on the alignment grid, and the part of it predicted (``rows``, ``cols``)."""

    r0: int
    c0: int
    rows: slice
    cols: slice

    def core(self, shape: tuple[int, int], tiling: Tiling) -> tuple[slice, slice]:
        """Where ``rows``, ``cols`` lie in the tile's block."""
        top, left = tiling.block_start(self.r0, shape[0]), tiling.block_start(self.c0, shape[1])
        return (slice(self.rows.start - top, self.rows.stop - top),
                slice(self.cols.start - left, self.cols.stop - left))


def fitted_tile(shape: tuple[int, int], max_tile: int, halo: int = HALO, align: int = 4) -> int:
    """The tile core (a multiple of ``align``, at most ``max_tile``) covering ``shape`` with the fewest padded
    pixels fed to the networks; the largest such tile on ties. 3000² with at most 640: 600 (25 tiles
    of 664², 11.0 Mpixel) rather than 512 (36 tiles of 576², 11.9 Mpixel)."""
    largest = min(max_tile, -(-max(shape) // align) * align)
    return min(range(largest, 0, -align),
               key=lambda t: -(-shape[0] // t) * -(-shape[1] // t) * (t + 2 * halo) ** 2)


def tile_origins(shape: tuple[int, int], tile: int) -> Iterator[tuple[int, int]]:
    """Upper-left (row, col) of each tile core, row by row."""
    for r0 in range(0, shape[0], tile):
        for c0 in range(0, shape[1], tile):
            yield r0, c0


def tiles(shape: tuple[int, int], tiling: Tiling, window: tuple[slice, slice] | None = None) -> list[Tile]:
    """The tiles covering ``window`` (default: the whole image), the first on the alignment grid at or
    before the window's corner."""
    rows, cols = window or (slice(0, shape[0]), slice(0, shape[1]))
    first_r, first_c = rows.start // tiling.align * tiling.align, cols.start // tiling.align * tiling.align
    span = (rows.stop - first_r, cols.stop - first_c)
    return [Tile(first_r + dr, first_c + dc,
                 slice(max(first_r + dr, rows.start), min(first_r + dr + tiling.tile, rows.stop)),
                 slice(max(first_c + dc, cols.start), min(first_c + dc + tiling.tile, cols.stop)))
            for dr, dc in tile_origins(span, tiling.tile)]


def read_padded(read: Reader, shape: tuple[int, int], r0: int, c0: int, tiling: Tiling) -> np.ndarray:
    """The block of the tile at (r0, c0) (see :meth:`Tiling.block_start`), reflect-padded past the image edge
    to (size, size, …)."""
    size = tiling.size
    r_start, c_start = tiling.block_start(r0, shape[0]), tiling.block_start(c0, shape[1])
    rows = slice(max(r_start, 0), min(r_start + size, shape[0]))
    cols = slice(max(c_start, 0), min(c_start + size, shape[1]))
    data = read(rows, cols)
    top, left = rows.start - r_start, cols.start - c_start
    pads = [(top, size - top - data.shape[0]), (left, size - left - data.shape[1])]
    pads += [(0, 0)] * (data.ndim - 2)
    if any(p for pair in pads for p in pair):
        mode = "reflect" if min(data.shape[:2]) > 1 else "edge"
        data = np.pad(data, pads, mode=mode)
    return data


def predict_tiles(fn: BatchFn, read: Reader, shape: tuple[int, int], tiling: Tiling,
                  window: tuple[slice, slice] | None = None) -> Iterator[tuple[Tile, np.ndarray, tuple[np.ndarray, ...]]]:
    """``fn`` on batches of padded tiles; yields each tile, its input core and its outputs' cores. The next
    batch is read in a thread while ``fn`` runs."""
    todo = tiles(shape, tiling, window)
    batches = [todo[i:i + tiling.batch] for i in range(0, len(todo), tiling.batch)]

    def load(batch: list[Tile]) -> np.ndarray:
        return np.stack([read_padded(read, shape, t.r0, t.c0, tiling) for t in batch])

    with ThreadPoolExecutor(max_workers=1) as reader:
        pending = reader.submit(load, batches[0])
        for k, batch in enumerate(batches):
            x = pending.result()
            if k + 1 < len(batches):
                pending = reader.submit(load, batches[k + 1])
            outputs = fn(x)
            for j, tile in enumerate(batch):
                core = tile.core(shape, tiling)
                yield tile, x[j][core], tuple(out[j][core] for out in outputs)


def predict_tiled(fn: BatchFn, read: Reader, shape: tuple[int, int], tiling: Tiling,
                  window: tuple[slice, slice] | None = None) -> tuple[np.ndarray, ...]:
    """The outputs of ``fn`` over ``window`` (default: the whole image), assembled in memory."""
    rows, cols = window or (slice(0, shape[0]), slice(0, shape[1]))
    assembled: list[np.ndarray] = []
    for tile, _, outputs in predict_tiles(fn, read, shape, tiling, window):
        if not assembled:
            assembled = [np.zeros((rows.stop - rows.start, cols.stop - cols.start) + o.shape[2:], o.dtype)
                         for o in outputs]
        at = (slice(tile.rows.start - rows.start, tile.rows.stop - rows.start),
              slice(tile.cols.start - cols.start, tile.cols.stop - cols.start))
        for whole, part in zip(assembled, outputs):
            whole[at] = part
    return tuple(assembled)
