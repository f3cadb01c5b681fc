from setuptools import find_packages, setup

setup(
    name="pvl8da",
    version="0.1.0",
    description="Cross-sensor cloud detection: Landsat-8 to Proba-V domain adaptation and FCD",
    packages=find_packages(include=["pvl8da", "pvl8da.*", "tasks", "tasks.*"]),
    python_requires=">=3.10",
    install_requires=[
        "numpy",
        "scipy",
        "h5py",
        "rasterio",
        "spectral",
        "luigi",
        "tqdm",
        "threadpoolctl",
        "tensorboard",
        "matplotlib",
        "keras>=3",
    ],
    extras_require={
        "cpu": ["tensorflow-cpu>=2.16"],
        "gpu": ["tensorflow[and-cuda]>=2.16"],
        # inference on Keras 3's JAX backend (KERAS_BACKEND=jax; tests/test_jax_backend.py runs where it is installed).
        # Not in the test extra: with JAX installed, `import tensorflow` imports it too (+0.5 s, +110 MB per process)
        "jax": ["jax"],
        "test": ["pytest"],
    },
)
