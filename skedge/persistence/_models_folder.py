"""The models folder of ``skedge run``: joblib files plus ``manifest.json``.

``skedge run`` writes it (:func:`save_models_folder`), ``skedge apply`` reads
it (:func:`load_models`). The joblib files are pickles: load only folders you
made or trust (:func:`~skedge.persistence.save_model` is the safe format for
one model). The manifest (format ``skedge-job-models``, version 1) names the
design space, the files, the λ of the run, the devices it trained on and held
out, the versions of the packages and the wall time of each stage. A folder
that holds files is never replaced silently (:func:`check_models_folder`).
"""

from __future__ import annotations

import json
import platform
from datetime import UTC, datetime
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import sklearn
import skorch
import torch
from sklearn.utils import Bunch

from .._checks import check_writable, load_model_file
from .._version import __version__
from ..devices import DEVICE_FEATURES
from ..optimize import AmortizedDesignOptimizer
from ..spaces import get_space

__all__ = ["MANIFEST", "MODEL_CHECKS", "MODEL_KINDS", "check_models_folder", "load_models",
           "save_models_folder"]

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "skedge-job-models"
MODEL_FILES = ("accuracy", "latency", "energy", "optimizer")

#: What each model file of a run folder must hold, and how that is checked.
MODEL_KINDS = {
    "accuracy": "a fitted accuracy predictor (an estimator with predict)",
    "latency": "a fitted latency predictor (an estimator with predict)",
    "energy": "a fitted energy predictor (an estimator with predict)",
    "optimizer": "a fitted skedge AmortizedDesignOptimizer",
}


def _is_predictor(obj):
    return hasattr(obj, "predict") and hasattr(obj, "fit")


def _is_optimizer(obj):
    return isinstance(obj, AmortizedDesignOptimizer) and hasattr(obj, "objective_")


MODEL_CHECKS = {"accuracy": _is_predictor, "latency": _is_predictor, "energy": _is_predictor,
                "optimizer": _is_optimizer}


def check_models_folder(out, *, overwrite):
    """Refuse a models folder that holds files unless ``overwrite``; check it is writable.

    Raises
    ------
    ValueError
        ``out`` is a file, cannot be written, or is not empty and ``overwrite``
        is False.
    """
    out = Path(out)
    check_writable(out, "--out", directory=True)
    held = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if held and not overwrite:
        shown = ", ".join(held[:4]) + (", ..." if len(held) > 4 else "")
        raise ValueError(
            f"--out {out} already holds files ({shown}); pass --overwrite to replace the "
            "models there, or choose another folder with --out."
        )


def save_models_folder(out, result):
    """Save the models of a workflow: one joblib file each, plus ``manifest.json``.

    A stale energy model of an earlier run is removed when ``result`` has none.

    Parameters
    ----------
    out : path-like
        The folder (created if needed). Check it first with
        :func:`check_models_folder`: this function replaces what it holds.
    result : WorkflowResult
        What :func:`skedge.workflow.run_workflow` returned.

    Returns
    -------
    files : list of str
        The names of the files written.
    """
    out = Path(out)
    data, models, optimizer = result.data, result.models, result.optimizer
    lambdas, lam_en = result.lambdas, result.lambda_energy
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for name in MODEL_FILES:
        est = optimizer if name == "optimizer" else models[name]
        path = out / f"{name}.joblib"
        if est is None:
            # A stale file from an earlier run with energy must not be mistaken for this run's.
            path.unlink(missing_ok=True)
            continue
        joblib.dump(est, path)
        files.append(path.name)
    obj = optimizer.objective_
    manifest = {
        "format": MANIFEST_FORMAT,
        "format_version": 1,
        "space": result.space,
        "space_repr": repr(data.space),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": _versions(),
        "data": data.source,
        "description": data.description,
        "device_columns": list(DEVICE_FEATURES),
        "lambda_columns": obj.lambda_names,
        "energy": models.energy is not None,
        "files": {name: f"{name}.joblib" for name in MODEL_FILES
                  if (optimizer if name == "optimizer" else models[name]) is not None},
        "lambdas": list(lambdas),
        "lambda_energy": lam_en if models.energy is not None else None,
        "train_devices": list(data.train_devices),
        "test_devices": list(data.test_devices),
        "random_state": result.random_state,
        "fast": bool(result.fast),
        "seconds": {k: round(v, 2) for k, v in result.seconds.items()},
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    files.append(MANIFEST)
    return files


def _versions():
    return {"skedge": __version__, "scikit-learn": sklearn.__version__,
            "torch": torch.__version__, "numpy": np.__version__, "pandas": pd.__version__,
            "python": platform.python_version(), "skorch": skorch.__version__}


def load_models(path):
    """Load the folder written by ``skedge run``.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    models : Bunch
        ``accuracy``, ``latency``, ``energy`` (None without energy),
        ``optimizer`` and ``manifest`` (dict).

    Raises
    ------
    FileNotFoundError
        The folder, its manifest or a model file is missing.
    ValueError
        The manifest is not a skedge job manifest, or the optimizer was
        fitted for another space than the manifest says.
    CommandFailed
        A model file is truncated, damaged or holds another kind of model.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(
            f"models directory {path} does not exist; create it with `skedge run --out {path}`."
        )
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise FileNotFoundError(
            f"{path} holds no {MANIFEST}: it is not a folder written by `skedge run`."
        )
    try:
        manifest = json.loads(mpath.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{mpath} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"{mpath} is not a skedge job manifest (format {MANIFEST_FORMAT!r}).")
    files = manifest.get("files", {})
    needed = ["accuracy", "latency", "optimizer"] + (["energy"] if manifest.get("energy") else [])
    missing = [files.get(k, f"{k}.joblib") for k in needed
               if not (path / files.get(k, f"{k}.joblib")).is_file()]
    if missing:
        raise FileNotFoundError(
            f"models directory {path} is incomplete: {', '.join(missing)} missing; "
            "rerun `skedge run`."
        )
    out = Bunch(manifest=manifest, energy=None)
    for key in needed:
        out[key] = load_model_file(path / files.get(key, f"{key}.joblib"),
                                   check=MODEL_CHECKS[key], expected=MODEL_KINDS[key])
    space = get_space(manifest["space"])
    if get_space(out.optimizer.space) != space:
        raise ValueError(
            f"{path}: the optimizer was fitted for {get_space(out.optimizer.space)!r} but the "
            f"manifest says {space!r}."
        )
    out.space = space
    return out
