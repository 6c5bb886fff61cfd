"""The safe format's constants and shared helpers: names, versions, checksums."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import sklearn
import skorch
import torch

from .._version import __version__

FORMAT = "skedge-safe-model"
FORMAT_VERSION = 1
JSON_NAME = "model.json"
ARRAYS_NAME = "arrays.safetensors"

# Array kinds that safetensors stores natively: bool, signed/unsigned int, float.
_NUMERIC_KINDS = "biuf"
# Packages whose estimator classes load_model may rebuild.
_TRUSTED_PACKAGES = ("sklearn", "skedge")
_BUILTIN_TYPES = {"float": float, "int": int, "bool": bool, "str": str}
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _safetensors_numpy():
    try:
        # optional: a dependency of skedge, but an install made before the safe format became
        # the default of `skedge run` may lack it; joblib works without it.
        import safetensors.numpy as st  # optional: see above
    except ImportError as exc:  # pragma: no cover - safetensors is a dependency
        raise ImportError(
            "save_model/load_model need the 'safetensors' package (a dependency of skedge): "
            "pip install safetensors. "
            "joblib.dump/joblib.load work without it, for trusted files only."
        ) from exc
    return st


def _class_path(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


def _versions():
    return {"skedge": __version__, "scikit-learn": sklearn.__version__,
            "numpy": np.__version__, "torch": torch.__version__, "skorch": skorch.__version__}


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
