"""Landsat MTL metadata files (pre-collection, Collection 1 and Collection 2) parsed into nested dicts with typed values."""
from __future__ import annotations

import datetime as dt
import logging
import os
import re
from pathlib import Path
from typing import Any

from pvl8da.errors import InputError

log = logging.getLogger(__name__)

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def _typed(value: str) -> Any:
    """Quoted strings stay strings; numbers, dates and timestamps become Python values."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    if _NUMBER.match(value):
        return int(value) if re.fullmatch(r"[+-]?\d+", value) else float(value)
    if _DATE.match(value):
        return dt.date.fromisoformat(value)
    if _DATETIME.match(value):
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value


def parse_mtl_text(text: str, source: str = "<MTL>") -> dict:
    """Parse the text of an MTL file: ``GROUP = X`` … ``END_GROUP = X`` nesting, ``KEY = VALUE`` lines, ``END``."""
    root: dict = {}
    stack: list[tuple[str, dict]] = [("", root)]
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line == "END":
            break
        if "=" not in line:
            raise InputError(f"{source}: line {lineno} is not 'KEY = VALUE': {raw!r}")
        key, value = (part.strip() for part in line.split("=", 1))
        if key == "GROUP":
            child: dict = {}
            stack[-1][1][value] = child
            stack.append((value, child))
        elif key == "END_GROUP":
            if len(stack) == 1 or stack[-1][0] != value:
                raise InputError(f"{source}: line {lineno}: END_GROUP = {value} closes no open group")
            stack.pop()
        else:
            stack[-1][1][key] = _typed(value)
    if len(stack) != 1:
        raise InputError(f"{source}: group {stack[-1][0]} is never closed (truncated file?)")
    if not root:
        raise InputError(f"{source}: no metadata found")
    return root


def parse_mtl(path: str | os.PathLike) -> dict:
    """Parse an MTL file (UTF-8, with or without a byte order mark) into nested dicts keyed by group name.

    Bytes that are not UTF-8 become U+FFFD, with a warning naming the first one's line.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: MTL file not found")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        log.warning("%s: line %d is not UTF-8 (byte 0x%02x); undecodable bytes read as U+FFFD", path,
                    data.count(b"\n", 0, exc.start) + 1, data[exc.start])
        text = data.decode("utf-8-sig", errors="replace")
    return parse_mtl_text(text, source=str(path))


_SCENE_ID_PRE = re.compile(r"^L[COTE]0?[89]\d{13}[A-Z]{3}\d{2}$")
_SPACECRAFTS = ("LANDSAT_8", "LANDSAT_9")
# Logical groups and the group names each generation's MTL files use for them, first match wins.
_GROUPS = {
    "product": ("PRODUCT_CONTENTS", "PRODUCT_METADATA"),
    "info": ("METADATA_FILE_INFO", "PRODUCT_CONTENTS"),
    "image": ("IMAGE_ATTRIBUTES",),
    "projection": ("PROJECTION_ATTRIBUTES", "PRODUCT_METADATA"),
    "radiometric": ("LEVEL1_RADIOMETRIC_RESCALING", "RADIOMETRIC_RESCALING"),
    "thermal": ("LEVEL1_THERMAL_CONSTANTS", "TIRS_THERMAL_CONSTANTS"),
    "projection_parameters": ("LEVEL1_PROJECTION_PARAMETERS", "PROJECTION_PARAMETERS"),
}


class MTL:
    """Generation-independent access to the fields of a parsed MTL file.

    ``collection`` is the product generation: 0 pre-collection (no ``COLLECTION_NUMBER``; the Biome
    scenes), 1 (``COLLECTION_NUMBER = 01``) or 2 (``LANDSAT_METADATA_FILE``, or ``COLLECTION_NUMBER = 02``
    in the early Collection 2 layout under ``L1_METADATA_FILE``).
    """

    def __init__(self, tree: dict, source: str = "<MTL>"):
        self.tree = tree
        self.source = source
        top_name = next((name for name in ("LANDSAT_METADATA_FILE", "L1_METADATA_FILE") if name in tree), None)
        if top_name is None:
            raise InputError(f"{source}: neither L1_METADATA_FILE (pre-collection, Collection 1) nor "
                             "LANDSAT_METADATA_FILE (Collection 2) group found")
        top = tree[top_name]
        self._groups = {name: next((top[g] for g in candidates if isinstance(top.get(g), dict)), {})
                        for name, candidates in _GROUPS.items()}
        self.collection = self._generation(top_name)

    def _generation(self, top_name: str) -> int:
        """Tell pre-collection, Collection 1 and Collection 2 apart; raise InputError where it cannot be told."""
        number = self._groups["info"].get("COLLECTION_NUMBER", self._groups["product"].get("COLLECTION_NUMBER"))
        if number is None and top_name == "L1_METADATA_FILE":
            scene_id = str(self._groups["info"].get("LANDSAT_SCENE_ID", ""))
            if _SCENE_ID_PRE.match(scene_id) and "LANDSAT_PRODUCT_ID" not in self._groups["info"]:
                return 0
            raise InputError(f"{self.source}: cannot tell the product generation: no COLLECTION_NUMBER and "
                             f"no pre-collection LANDSAT_SCENE_ID (found {scene_id or 'none'!r})")
        if number is None:
            number = 2
        if number not in (1, 2) or (top_name == "LANDSAT_METADATA_FILE" and number != 2):
            raise InputError(f"{self.source}: cannot tell the product generation: COLLECTION_NUMBER = "
                             f"{number} in {top_name}")
        product_id = str(self._groups["info"].get("LANDSAT_PRODUCT_ID", ""))
        if product_id and f"_{number:02d}_" not in product_id:
            raise InputError(f"{self.source}: LANDSAT_PRODUCT_ID {product_id} contradicts "
                             f"COLLECTION_NUMBER = {number:02d}")
        return number

    @property
    def generation(self) -> str:
        """'pre-collection', 'Collection 1' or 'Collection 2'."""
        return ("pre-collection", "Collection 1", "Collection 2")[self.collection]

    @property
    def scene_id(self) -> str | None:
        """LANDSAT_PRODUCT_ID (Collections 1, 2) or LANDSAT_SCENE_ID (pre-collection), if the MTL has it."""
        info = self._groups["info"]
        return info.get("LANDSAT_PRODUCT_ID") or info.get("LANDSAT_SCENE_ID")

    @property
    def spacecraft(self) -> str:
        """SPACECRAFT_ID, e.g. LANDSAT_8 or LANDSAT_9; LANDSAT_8 where the MTL does not say."""
        return str(self._groups["image"].get("SPACECRAFT_ID", self._groups["product"].get("SPACECRAFT_ID",
                                                                                       "LANDSAT_8")))

    def check_spacecraft(self) -> None:
        """Raise InputError unless the scene comes from Landsat 8 or 9 (OLI/TIRS bands)."""
        if self.spacecraft not in _SPACECRAFTS:
            raise InputError(f"{self.source}: SPACECRAFT_ID {self.spacecraft} is not Landsat 8 or 9 "
                             "(OLI/TIRS bands are required)")

    def file_name(self, key: str) -> str | None:
        """A FILE_NAME_* entry of the product group (band and quality file names), if present."""
        value = self._groups["product"].get(key)
        return None if value is None else str(value)

    @classmethod
    def read(cls, path: str | os.PathLike) -> "MTL":
        return cls(parse_mtl(path), source=str(path))

    def get(self, group: str, key: str) -> Any:
        """A field of a logical group: info, product, image, projection, radiometric, thermal, projection_parameters."""
        try:
            return self._groups[group][key]
        except KeyError:
            raise InputError(f"{self.source}: missing MTL key {key} "
                             f"({self.generation}, {group} group)") from None

    @property
    def acquisition_time(self) -> dt.datetime:
        """Date acquired + scene centre time, in UTC (microsecond precision)."""
        group = "image" if "DATE_ACQUIRED" in self._groups["image"] else "product"
        date = self.get(group, "DATE_ACQUIRED")
        time = str(self.get(group, "SCENE_CENTER_TIME")).rstrip("Z")
        hms, _, frac = time.partition(".")
        h, m, s = (int(v) for v in hms.split(":"))
        micro = int((frac + "000000")[:6]) if frac else 0
        if isinstance(date, str):
            date = dt.date.fromisoformat(date)
        return dt.datetime(date.year, date.month, date.day, h, m, s, micro, tzinfo=dt.timezone.utc)

    @property
    def sun_elevation(self) -> float:
        return float(self.get("image", "SUN_ELEVATION"))

    @property
    def sun_azimuth(self) -> float:
        return float(self.get("image", "SUN_AZIMUTH"))

    @property
    def cloud_cover(self) -> float:
        return float(self.get("image", "CLOUD_COVER"))

    def reflectance_rescaling(self, band: int) -> tuple[float, float]:
        """(REFLECTANCE_MULT, REFLECTANCE_ADD) of a reflective band (1–9)."""
        return (float(self.get("radiometric", f"REFLECTANCE_MULT_BAND_{band}")),
                float(self.get("radiometric", f"REFLECTANCE_ADD_BAND_{band}")))

    def radiance_rescaling(self, band: int) -> tuple[float, float]:
        """(RADIANCE_MULT, RADIANCE_ADD) of any band."""
        return (float(self.get("radiometric", f"RADIANCE_MULT_BAND_{band}")),
                float(self.get("radiometric", f"RADIANCE_ADD_BAND_{band}")))

    def thermal_constants(self, band: int) -> tuple[float, float]:
        """(K1, K2) of a thermal band (10, 11)."""
        return (float(self.get("thermal", f"K1_CONSTANT_BAND_{band}")),
                float(self.get("thermal", f"K2_CONSTANT_BAND_{band}")))


def _format_value(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:.6E}" if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e7) else f"{value:.8f}"
    return str(value)


def format_mtl(tree: dict) -> str:
    """Inverse of :func:`parse_mtl_text`: nested dicts back to MTL text (two-space indentation, final END)."""
    lines: list[str] = []

    def emit(group: dict, depth: int) -> None:
        pad = "  " * depth
        for key, value in group.items():
            if isinstance(value, dict):
                lines.append(f"{pad}GROUP = {key}")
                emit(value, depth + 1)
                lines.append(f"{pad}END_GROUP = {key}")
            else:
                lines.append(f"{pad}{key} = {_format_value(value)}")

    emit(tree, 0)
    lines.append("END")
    return "\n".join(lines) + "\n"
