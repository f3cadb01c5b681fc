#!/usr/bin/env bash
# Prepare what benchmarks/gpu_check.sh needs on the GPU machine (Python 3.12, x86-64, no network, no TensorFlow,
# Keras, Luigi, rasterio or spectral): run HERE, from anywhere in the checkout. Downloads into .whl/ (ignored) the
# wheels of the packages that machine lacks, at the versions of this checkout's .venv, checks that every
# requirement of theirs is carried or already there, and copies the published weights and the golden product
# (../shared does not travel). Fails if .whl/ exceeds 60 MiB.
# Usage: bash benchmarks/gpu_wheels.sh        (PYTHON=... to read versions from another interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
REF=${PVL8DA_REFERENCE:-../shared/reference}
GOLDEN=golden/inference/PROBAV_L2A_20150704_101530_2_333M_V101.HDF5
MAX_MIB=60
# Missing on the GPU machine: Keras and its namex/optree; Luigi and its tornado/python-daemon/lockfile/tenacity;
# rasterio and its affine/cligj/click-plugins; spectral.
CARRY=(keras namex optree luigi tornado python-daemon lockfile tenacity rasterio affine cligj click-plugins spectral)
# Already on the GPU machine (its image's package list), as far as the carried wheels need them.
PRESENT="absl-py attrs certifi click h5py jax jaxlib markdown-it-py matplotlib mdurl ml-dtypes numpy packaging
pygments pyparsing python-dateutil rich scipy six threadpoolctl tqdm typing-extensions"

mkdir -p .git/info
grep -qxF '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >>.git/info/exclude
mkdir -p .whl/weights .whl/golden
rm -f .whl/*.whl  # one version of each package: two stop the install there

platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
    platforms+=(--platform "$p")
done
for name in "${CARRY[@]}"; do
    spec="$name==$("$PY" -c 'import importlib.metadata as m, sys; print(m.version(sys.argv[1]))' "$name")"
    echo "downloading $spec"
    if ! "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            "${platforms[@]}" -d .whl "$spec" 2>/dev/null; then
        # no wheel published (spectral 0.25): build one from the sdist, which must be pure Python
        "$PY" -m pip wheel -q --no-deps -w .whl "$spec"
        ls .whl/"${name//-/_}"-*-none-any.whl >/dev/null || { echo "error: no pure-Python wheel of $spec" >&2; exit 1; }
    fi
done

# every unconditional requirement (markers evaluated for CPython 3.12 on Linux) is carried or already there
"$PY" - .whl "$PRESENT ${CARRY[*]}" <<'EOF'
import re, sys, zipfile
from pathlib import Path
from packaging.requirements import Requirement

env = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux", "os_name": "posix",
       "platform_system": "Linux", "platform_machine": "x86_64", "implementation_name": "cpython", "extra": ""}
norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()
known = {norm(n) for n in sys.argv[2].split()}
missing = []
for wheel in sorted(Path(sys.argv[1]).glob("*.whl")):
    with zipfile.ZipFile(wheel) as z:
        meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    reqs = [Requirement(line.split(":", 1)[1]) for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    needed = [r for r in reqs if r.marker is None or r.marker.evaluate(env)]
    print(f"{wheel.name}: {', '.join(str(r) for r in needed) or '-'}")
    missing += [f"{r.name} (for {wheel.name})" for r in needed if norm(r.name) not in known]
if missing:
    sys.exit("not carried and not on the GPU machine: " + ", ".join(missing))
EOF

cp -f "$REF/weights/cloud_detection_l8.hdf5" "$REF/weights/full.hdf5" .whl/weights/
cp -f "$REF/$GOLDEN" "$REF/$GOLDEN.reference.npz" .whl/golden/
chmod -R u+w .whl

ls -l .whl .whl/weights .whl/golden
bytes=$(du -sb .whl | cut -f1)
echo "total .whl: $((bytes / 1024 / 1024)) MiB ($bytes bytes)"
if ((bytes > MAX_MIB * 1024 * 1024)); then
    echo "error: .whl/ is over $MAX_MIB MiB: the tree that travels to the GPU machine must stay under 64 MiB" >&2
    exit 1
fi
