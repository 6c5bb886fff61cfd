"""Saving and loading fitted models: joblib pickles, or a safe weights-and-JSON format.

Two ways to persist a fitted predictor, pipeline or optimizer:

``joblib.dump(model, "model.joblib")`` / ``joblib.load("model.joblib")``
    Stores anything, exactly as it is in memory. A pickle is *code*: loading
    one runs whatever instructions it holds, so only ever load pickles that
    you made yourself or that come from a source you trust. skorch nets inside
    a pickle reload on a CPU-only machine even when they were trained on a GPU
    (skorch maps their tensors to the CPU and warns).

:func:`save_model` / :func:`load_model`
    A folder with two files and no pickle: ``model.json`` (classes, parameters
    and structure, plain JSON you can read) and ``arrays.safetensors`` (every
    array and network weight, in the `safetensors` format, which holds numbers
    only). Loading parses the JSON, rebuilds only classes of scikit-learn and
    skedge (plus skedge's own torch :class:`~skedge._torch.MLP` and skorch's
    ``NeuralNetRegressor`` around it) and fills in the arrays; nothing in the
    files is ever executed. Use it to ship models to production or to share
    them.

What the safe format stores, per object:

* scikit-learn and skedge estimators (``Pipeline``, ``ColumnTransformer``,
  encoders, imputers, scalers, :class:`~skedge.AccuracyRegressor`,
  :class:`~skedge.DevicePerformanceRegressor`,
  :class:`~skedge.AmortizedDesignOptimizer`,
  :class:`~skedge.fewshot.FewShotAdapter`, ...): their whole state, as pickle
  would (``__getstate__`` / ``__setstate__``), restricted to plain values:
  numbers, strings, arrays, lists, tuples, dicts, slices, numpy dtypes and
  scalar types, design spaces and other estimators;
* skorch ``NeuralNetRegressor`` members of the predictors: the module's
  constructor arguments, the plain training parameters (``lr``,
  ``max_epochs``, ...), the criterion and optimizer class names and the
  weights (``state_dict``). On load the net is rebuilt on the CPU,
  ``initialize()``-d and given the weights. Training-only state is not kept:
  callbacks, the validation split, the optimizer's moments and the history.
  The predictors never refit these member nets (``fit`` builds new ones), so a
  loaded predictor predicts identically and refits like a fresh one;
* the optimizer's networks (:class:`~skedge._torch.MLP`): their shape and
  weights.

Anything else (a fitted :class:`~skedge.SearchBaseline`, whose state is a
predictor-derived objective, a ``FunctionTransformer`` with a Python
function, ...) raises a ``TypeError`` naming where it sits: save its parts
(the predictors) and rebuild it, or use joblib.

The format is written by ``_save`` (the encoder), read by ``_load`` (the
decoder, which resolves only allowlisted classes); ``_format`` holds what both
share (file names, format version, checksums).

The models folder of ``skedge run`` / ``skedge apply`` holds one model per
stage in either format (a :func:`save_model` folder each by default, or joblib
files; :data:`MODEL_FORMATS`) plus a ``manifest.json``: ``_models_folder``
(:func:`save_models_folder`, :func:`load_models`, :func:`check_models_folder`).
"""

from ._load import load_model
from ._models_folder import (
    DEFAULT_MODEL_FORMAT,
    MODEL_FORMATS,
    check_models_folder,
    load_models,
    save_models_folder,
)
from ._save import save_model

__all__ = ["DEFAULT_MODEL_FORMAT", "MODEL_FORMATS", "check_models_folder", "load_model",
           "load_models", "save_model", "save_models_folder"]
