#!/usr/bin/env bash
# GPU check of InferenceDA on Keras' JAX backend, run from the repository root on a machine with a GPU and the
# .whl/ folder made by benchmarks/gpu_wheels.sh carried along: installs the carried wheels into /tmp/site where
# python3 lacks Keras or rasterio, then runs benchmarks/gpu_check.py (float32 and bfloat16: golden agreement,
# networks' throughput, InferenceDA on a synthetic GPU_CHECK_SIZE² product with its peak GPU memory) and prints
# its JSON object. Without a GPU visible to JAX it prints {"gpu": false, ...} and exits 0. The whole script
# stays under 8 minutes.
# Environment: GPU_CHECK_SIZE (default 10000), GPU_CHECK_ALLOW_CPU=1 (measure on JAX's CPU backend, to try the
# path without a GPU), GPU_CHECK_WORKDIR (default /tmp/pvl8da-gpu-check), PYTHON (default python3).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
BUDGET_S=470  # all of it, under 8 minutes
export KERAS_BACKEND=jax TQDM_DISABLE=1 XLA_PYTHON_CLIENT_PREALLOCATE=false TF_CPP_MIN_LOG_LEVEL=2 MPLBACKEND=Agg

platform=$(timeout 90 "$PY" -c 'import jax; print(jax.default_backend())' 2>/dev/null | tail -n 1)
if [[ $platform != gpu && ${GPU_CHECK_ALLOW_CPU:-0} != 1 ]]; then
    echo '{"gpu": false, "message": "no GPU visible to JAX; nothing measured"}'
    exit 0
fi

if ls .whl/*.whl >/dev/null 2>&1 && ! "$PY" -c 'import keras, rasterio' >/dev/null 2>&1; then
    timeout 120 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/*.whl >&2 || { echo '{"gpu": true, "error": "installing the carried wheels failed"}'; exit 1; }
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
if [[ ! -f .whl/weights/full.hdf5 || ! -f .whl/golden/PROBAV_L2A_20150704_101530_2_333M_V101.HDF5.reference.npz ]]; then
    echo '{"gpu": true, "error": "weights or golden product not carried: run benchmarks/gpu_wheels.sh here first"}'
    exit 1
fi

left=$((BUDGET_S - SECONDS))
timeout $((left + 10)) "$PY" benchmarks/gpu_check.py main --size "${GPU_CHECK_SIZE:-10000}" --carried .whl \
    --workdir "${GPU_CHECK_WORKDIR:-/tmp/pvl8da-gpu-check}" --deadline-s $((left - 5))
