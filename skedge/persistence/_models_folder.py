"""The models folder of ``skedge run``: one saved model each, plus ``manifest.json``.

``skedge run`` writes it (:func:`save_models_folder`), ``skedge apply`` reads
it (:func:`load_models`). Each model (``accuracy``, ``latency``, ``energy``
when the data has it, ``optimizer``) is saved in one of two formats, the same
for the whole folder:

``"safe"`` (the default)
    A folder per model written by :func:`~skedge.persistence.save_model`
    (``accuracy/model.json`` + ``accuracy/arrays.safetensors``, ...): no
    pickle, nothing in it is executed on load. Ship and share these.
``"joblib"``
    One pickle per model (``accuracy.joblib``, ...). A pickle is code: load
    only folders you made or trust.

The manifest (format ``skedge-job-models``, version 2) records the model
format and names the files, and holds the design space, the λ of the run, the
devices it trained on and held out, the versions of the packages and the wall
time of each stage. Version 1 manifests (written before the safe format was
the default) name joblib files only and still load. A folder that holds files
is never replaced silently (:func:`check_models_folder`), and a re-save
removes the models of an earlier save that this one does not rewrite (the
other format, an energy model the new run lacks), so a folder never mixes two
runs or two formats.
"""

from __future__ import annotations

import contextlib
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
from ._format import ARRAYS_NAME, JSON_NAME, _safetensors_numpy
from ._load import load_model
from ._save import save_model

__all__ = ["DEFAULT_MODEL_FORMAT", "MANIFEST", "MODEL_CHECKS", "MODEL_FORMATS", "MODEL_KINDS",
           "check_models_folder", "load_models", "save_models_folder"]

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "skedge-job-models"
#: Manifest versions :func:`load_models` reads: 1 (joblib files only) and 2 (``model_format``).
MANIFEST_VERSION = 2
MODEL_FILES = ("accuracy", "latency", "energy", "optimizer")
#: How the models of a folder can be saved; see the module docstring.
MODEL_FORMATS = ("safe", "joblib")
DEFAULT_MODEL_FORMAT = "safe"
# What load_model_file reads, per format: the loader and its name for the messages.
_LOADERS = {
    "safe": (load_model, f"a skedge model folder ({JSON_NAME} + {ARRAYS_NAME})"),
    "joblib": (joblib.load, "a joblib file"),
}

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


def check_models_folder(out, *, overwrite, model_format=DEFAULT_MODEL_FORMAT):
    """Refuse a models folder that holds files unless ``overwrite``; check it is writable.

    Parameters
    ----------
    out : path-like
    overwrite : bool
        Whether the models of an earlier run in ``out`` may be replaced.
    model_format : {"safe", "joblib"}, default="safe"
        The format :func:`save_models_folder` will write; ``"safe"`` needs the
        safetensors package.

    Raises
    ------
    ValueError
        ``out`` is a file, cannot be written, or is not empty and ``overwrite``
        is False; ``model_format`` is unknown or cannot be written here.
    """
    out = Path(out)
    _check_model_format(model_format, "--model-format")
    if model_format == "safe":
        _need_safetensors(" (or pass --model-format joblib, for models you will only load "
                          "yourself)")
    check_writable(out, "--out", directory=True)
    held = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if held and not overwrite:
        shown = ", ".join(held[:4]) + (", ..." if len(held) > 4 else "")
        raise ValueError(
            f"--out {out} already holds files ({shown}); pass --overwrite to replace the "
            "models there, or choose another folder with --out."
        )


def save_models_folder(out, result, *, model_format=DEFAULT_MODEL_FORMAT):
    """Save the models of a workflow, one per file or folder, plus ``manifest.json``.

    The models of an earlier save that this one does not rewrite are removed:
    those in the other format, and an energy model when ``result`` has none.

    Parameters
    ----------
    out : path-like
        The folder (created if needed). Check it first with
        :func:`check_models_folder`: this function replaces what it holds.
    result : WorkflowResult
        What :func:`skedge.workflow.run_workflow` returned.
    model_format : {"safe", "joblib"}, default="safe"
        ``"safe"``: a :func:`~skedge.persistence.save_model` folder per model
        (``accuracy/``, ...), no pickle; ``"joblib"``: a pickle per model
        (``accuracy.joblib``, ...), for folders you will only load yourself.

    Returns
    -------
    files : list of str
        The names of the files written, model folders with a trailing ``/``.
    """
    _check_model_format(model_format, "model_format")
    out = Path(out)
    data, models, optimizer = result.data, result.models, result.optimizer
    lambdas, lam_en = result.lambdas, result.lambda_energy
    out.mkdir(parents=True, exist_ok=True)
    saved = {}
    for name in MODEL_FILES:
        est = optimizer if name == "optimizer" else models[name]
        # A stale model of an earlier run (the other format, or energy this run lacks) must
        # not be mistaken for this run's.
        _remove_model(out, name)
        if est is None:
            continue
        saved[name] = _model_file(name, model_format)
        if model_format == "safe":
            save_model(est, out / saved[name], overwrite=True)
        else:
            joblib.dump(est, out / saved[name])
    obj = optimizer.objective_
    manifest = {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_VERSION,
        "model_format": model_format,
        "space": result.space,
        "space_repr": repr(data.space),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": _versions(),
        "data": data.source,
        "description": data.description,
        "device_columns": list(DEVICE_FEATURES),
        "lambda_columns": obj.lambda_names,
        "energy": models.energy is not None,
        "files": saved,
        "lambdas": list(lambdas),
        "lambda_energy": lam_en if models.energy is not None else None,
        "train_devices": list(data.train_devices),
        "test_devices": list(data.test_devices),
        "random_state": result.random_state,
        "fast": bool(result.fast),
        "seconds": {k: round(v, 2) for k, v in result.seconds.items()},
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    folder = "/" if model_format == "safe" else ""
    return [f"{name}{folder}" for name in saved.values()] + [MANIFEST]


def _check_model_format(model_format, option):
    if model_format not in MODEL_FORMATS:
        raise ValueError(
            f"{option} must be one of {', '.join(MODEL_FORMATS)}, got {model_format!r}."
        )


def _need_safetensors(hint=""):
    """Refuse, with a one-line message, when the safe format's package is missing."""
    try:
        _safetensors_numpy()
    except ImportError:
        raise ValueError(
            f"the safe model format needs the safetensors package: pip install safetensors{hint}."
        ) from None


def _model_file(name, model_format):
    """The name of model ``name`` in the folder: a folder (safe) or a ``.joblib`` file."""
    return name if model_format == "safe" else f"{name}.joblib"


def _remove_model(out, name):
    """Remove model ``name`` of an earlier save in ``out``, in either format."""
    (out / _model_file(name, "joblib")).unlink(missing_ok=True)
    folder = out / _model_file(name, "safe")
    if folder.is_dir():
        for part in (JSON_NAME, ARRAYS_NAME):
            (folder / part).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            folder.rmdir()  # kept when it holds files that are not skedge's


def _missing_parts(path, file, model_format):
    """The parts of a model that ``path`` lacks, as names relative to ``path``."""
    if model_format == "joblib":
        return [] if (path / file).is_file() else [file]
    if not (path / file).is_dir():
        return [f"{file}/"]
    return [f"{file}/{part}" for part in (JSON_NAME, ARRAYS_NAME)
            if not (path / file / part).is_file()]


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
        ``optimizer``, ``manifest`` (dict) and ``space``.

    Raises
    ------
    FileNotFoundError
        The folder, its manifest or a model file is missing.
    ValueError
        The manifest is not a skedge job manifest (or one of a later
        version), or the optimizer was fitted for another space than the
        manifest says.
    CommandFailed
        A model file is truncated, damaged or holds another kind of model.

    Notes
    -----
    The manifest says which format the models are in (version 1: joblib
    only). Models in the safe format are loaded without unpickling anything;
    joblib models are pickles, so load a joblib folder only when you trust it.
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
    model_format = _manifest_model_format(manifest, mpath)
    files = {k: manifest.get("files", {}).get(k, _model_file(k, model_format))
             for k in MODEL_FILES}
    for key, name in files.items():
        # A manifest names files inside its folder, never a path elsewhere on the machine.
        if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
            raise ValueError(f"{mpath}: files[{key!r}] = {name!r} is not a file name in {path}.")
    needed = ["accuracy", "latency", "optimizer"] + (["energy"] if manifest.get("energy") else [])
    missing = [part for k in needed for part in _missing_parts(path, files[k], model_format)]
    if missing:
        raise FileNotFoundError(
            f"models directory {path} is incomplete: {', '.join(missing)} missing; "
            "rerun `skedge run`."
        )
    load, kind = _LOADERS[model_format]
    out = Bunch(manifest=manifest, energy=None)
    for key in needed:
        out[key] = load_model_file(path / files[key], check=MODEL_CHECKS[key],
                                   expected=MODEL_KINDS[key], load=load, kind=kind)
    space = get_space(manifest["space"])
    if get_space(out.optimizer.space) != space:
        raise ValueError(
            f"{path}: the optimizer was fitted for {get_space(out.optimizer.space)!r} but the "
            f"manifest says {space!r}."
        )
    out.space = space
    return out


def _manifest_model_format(manifest, mpath):
    """The format of a manifest's models: joblib for version 1, ``model_format`` from 2 on."""
    version = manifest.get("format_version", 1)
    if version == 1:
        return "joblib"
    if version != MANIFEST_VERSION:
        raise ValueError(
            f"{mpath} has format version {version!r}; this skedge ({__version__}) reads "
            f"versions 1 to {MANIFEST_VERSION}. Update skedge, or rerun `skedge run`."
        )
    model_format = manifest.get("model_format")
    if model_format not in MODEL_FORMATS:
        raise ValueError(
            f"{mpath} names the model format {model_format!r}; this skedge reads "
            f"{', '.join(MODEL_FORMATS)}."
        )
    if model_format == "safe":
        _need_safetensors()
    return model_format
