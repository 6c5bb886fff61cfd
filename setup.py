"""Package metadata of skedge (tool settings live in pyproject.toml)."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
version = {}
exec((HERE / "skedge" / "_version.py").read_text(), version)

setup(
    name="skedge",
    version=version["__version__"],
    description=(
        "scikit-learn-compatible toolkit that scales DNN design optimization to "
        "thousands of edge devices: cross-device performance predictors and an "
        "amortized design optimizer."
    ),
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="BSD-3-Clause",
    python_requires=">=3.10",
    packages=find_packages(include=["skedge", "skedge.*"]),
    install_requires=[
        "numpy>=1.24",
        "scipy>=1.10",
        "pandas>=2.0",
        "scikit-learn>=1.6",
        "joblib>=1.3",
        "skorch>=1.0",
        # A range, never a bare name: with the CPU build (pip install torch==2.13.0)
        # already present nothing more is installed; a bare `torch` on a clean
        # machine would pull a multi-GB CUDA build.
        "torch>=2.1,<2.15",
        # The safe model format (save_model/load_model), which `skedge run` saves by default.
        "safetensors>=0.4",
    ],
    extras_require={
        "dask": ["dask[distributed]>=2024.1"],
        "plot": ["matplotlib>=3.7"],
        "safe": [],  # kept for old install commands: safetensors is a core dependency now
        # Profiling devices (skedge measure --backend onnxruntime / --energy on a GPU,
        # skedge export): imported lazily, only by the commands that need them.
        "profile": ["onnx>=1.14", "onnxruntime>=1.16", "nvidia-ml-py>=12"],
        "docs": [
            "sphinx>=7",
            "numpydoc>=1.6",
            "sphinx-gallery>=0.15",
            "matplotlib>=3.7",
            "pillow",
        ],
        "test": [
            "pytest>=7",
            "dask[distributed]>=2024.1",
            "matplotlib>=3.7",
            "safetensors>=0.4",
            "sphinx>=7",
            "numpydoc>=1.6",
            "sphinx-gallery>=0.15",
            "pillow",
            "onnx>=1.14",
            "onnxruntime>=1.16",
            "nvidia-ml-py>=12",
            "hypothesis>=6",
            # Pinned: each ruff release may enable more rules (tests/test_architecture.py).
            "ruff==0.17.6",
        ],
    },
    entry_points={"console_scripts": ["skedge=skedge.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Intended Audience :: Science/Research",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
