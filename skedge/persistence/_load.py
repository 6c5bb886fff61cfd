"""Loading: the decoder that rebuilds allowlisted classes from JSON nodes and arrays."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator
from skorch import NeuralNetRegressor
from skorch.net import NeuralNet

from .. import spaces
from .._torch import MLP, seeded
from .._version import __version__
from ..spaces import DesignSpace
from ._format import (
    _BUILTIN_TYPES,
    _IDENTIFIER,
    _TRUSTED_PACKAGES,
    ARRAYS_NAME,
    FORMAT,
    FORMAT_VERSION,
    JSON_NAME,
    _class_path,
    _safetensors_numpy,
    _sha256,
)

__all__ = ["load_model"]


class _Decoder:
    """Rebuilds objects from JSON nodes, resolving only allowlisted classes."""

    def __init__(self, arrays):
        self.arrays = arrays
        self._memo = {}

    def array(self, key):
        if key not in self.arrays:
            raise ValueError(f"the model file refers to array {key!r}, missing from the arrays.")
        return np.array(self.arrays[key])  # a writeable copy

    def decode(self, node):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self.decode(x) for x in node]
        if not isinstance(node, dict) or len(node) == 0:
            raise ValueError(f"malformed model file: unexpected node {node!r}.")
        tag = next(iter(node))
        if tag == "__float__":
            return float(node[tag])
        if tag == "__npscalar__":
            return np.dtype(node[tag]).type(self.decode(node["value"]))
        if tag == "__dtype__":
            return np.dtype(node[tag])
        if tag == "__ndarray__":
            return self.array(node[tag])
        if tag == "__list_array__":
            dtype = np.dtype(node["dtype"])
            items = [self.decode(x) for x in node[tag]]
            if dtype.kind == "O":
                out = np.empty(len(items), dtype=object)
                out[:] = items
            else:
                out = np.array(items, dtype=dtype)
            return out.reshape(node["shape"])
        if tag == "__tensor__":
            t = torch.from_numpy(self.array(node[tag]))
            return t.requires_grad_(bool(node.get("requires_grad", False)))
        if tag == "__slice__":
            return slice(*(self.decode(x) for x in node[tag]))
        if tag == "__tuple__":
            return tuple(self.decode(x) for x in node[tag])
        if tag == "__dict__":
            return {k: self.decode(v) for k, v in node[tag].items()}
        if tag == "__items__":
            return {self.decode(k): self.decode(v) for k, v in node[tag]}
        if tag == "__type__":
            return _resolve_type(node[tag])
        if tag == "__space__":
            return _resolve_space(node[tag])(**self.decode(node["params"]))
        if tag == "__mlp__":
            return self._mlp(node)
        if tag == "__ref__":
            if node[tag] not in self._memo:
                raise ValueError(f"malformed model file: unknown reference {node[tag]!r}.")
            return self._memo[node[tag]]
        if tag == "__skorch__":
            return self._skorch(node)
        if tag == "__estimator__":
            return self._estimator(node)
        raise ValueError(f"malformed model file: unknown node type {tag!r}.")

    def _load_state(self, module, node):
        state = {k: self.decode(v) for k, v in node.items()}
        module.load_state_dict(state, strict=True)

    def _mlp(self, node):
        config = self.decode(node["__mlp__"])
        with seeded(0):  # construction draws initial weights; keep the global RNG as it is
            net = MLP(**config)
        with torch.no_grad():
            self._load_state(net, node["state_dict"])
        net.train(bool(node.get("training", False)))
        flags = node.get("requires_grad")
        if flags is not None:
            for p, flag in zip(net.parameters(), flags):
                p.requires_grad_(bool(flag))
        return net

    def _skorch(self, node):
        if node["__skorch__"] != "NeuralNetRegressor" or node.get("module") != _class_path(MLP):
            raise ValueError(
                f"the model file asks for a {node['__skorch__']} around {node.get('module')}; "
                "only NeuralNetRegressor around skedge._torch.MLP can be loaded."
            )
        params = {}
        for key, value in node["params"].items():
            if key == "criterion":
                params[key] = _torch_class(torch.nn, value, torch.nn.Module)
            elif key == "optimizer":
                params[key] = _torch_class(torch.optim, value, torch.optim.Optimizer)
            else:
                params[key] = self.decode(value)
        # Prediction happens on the CPU; training-only parts are not stored.
        params.update(device="cpu", train_split=None, callbacks=None)
        net = NeuralNetRegressor(module=MLP, **params)
        with seeded(0):
            net.initialize()
        with torch.no_grad():
            self._load_state(net.module_, node["state_dict"])
        net.module_.eval()
        self._memo[node["id"]] = net
        return net

    def _estimator(self, node):
        cls = _resolve_estimator(node["__estimator__"])
        obj = cls.__new__(cls)
        self._memo[node["id"]] = obj
        state = {k: self.decode(v) for k, v in node["state"].items()}
        if hasattr(obj, "__setstate__"):
            obj.__setstate__(state)
        else:  # pragma: no cover - every BaseEstimator has __setstate__
            obj.__dict__.update(state)
        return obj


def _torch_class(base, name, kind):
    cls = getattr(base, name, None) if _IDENTIFIER.match(str(name)) else None
    if not (isinstance(cls, type) and issubclass(cls, kind)):
        raise ValueError(f"the model file names an unknown {base.__name__} class {name!r}.")
    return cls


def _resolve_type(name):
    if name in _BUILTIN_TYPES:
        return _BUILTIN_TYPES[name]
    prefix, _, attr = str(name).partition(".")
    cls = getattr(np, attr, None) if prefix == "numpy" and _IDENTIFIER.match(attr) else None
    if not (isinstance(cls, type) and issubclass(cls, np.generic)):
        raise ValueError(f"the model file names a type {name!r} that load_model does not allow.")
    return cls


def _resolve_space(name):
    cls = getattr(spaces, name, None) if _IDENTIFIER.match(str(name)) else None
    if not (isinstance(cls, type) and issubclass(cls, DesignSpace)):
        raise ValueError(f"the model file names an unknown design space {name!r}.")
    return cls


def _resolve_estimator(path):
    """The estimator class at ``path``, only from scikit-learn or skedge."""
    module_name, _, name = str(path).rpartition(".")
    top = module_name.split(".")[0]
    ok = (top in _TRUSTED_PACKAGES and _IDENTIFIER.match(name)
          and all(_IDENTIFIER.match(p) for p in module_name.split(".")))
    cls = None
    if ok:
        try:
            cls = getattr(importlib.import_module(module_name), name, None)
        except ImportError:
            cls = None
    if not (isinstance(cls, type) and issubclass(cls, BaseEstimator)) or _is_skorch_class(cls):
        raise ValueError(
            f"the model file asks for the class {path!r}; load_model only rebuilds "
            f"estimators of {', '.join(_TRUSTED_PACKAGES)} (was the file made by another "
            "version, or edited?)."
        )
    return cls


def _is_skorch_class(cls):
    return issubclass(cls, NeuralNet)


def load_model(path):
    """Load a model written by :func:`save_model`, without unpickling anything.

    Parameters
    ----------
    path : str or path-like
        The folder :func:`save_model` wrote.

    Returns
    -------
    estimator : estimator
        The model, ready to ``predict`` (on the CPU) and to be refitted.

    Raises
    ------
    FileNotFoundError
        When the folder or one of its two files is missing.
    ValueError
        When the files are not a skedge model, were changed after saving
        (checksum), or name a class outside scikit-learn and skedge.

    Notes
    -----
    scikit-learn warns (``InconsistentVersionWarning``) when the model was
    saved with another scikit-learn version, as it does for pickles; the
    versions used to save are in ``model.json`` under ``"versions"``.

    Examples
    --------
    See :func:`save_model`.
    """
    st = _safetensors_numpy()
    path = Path(path)
    json_file, arrays_file = path / JSON_NAME, path / ARRAYS_NAME
    for f in (json_file, arrays_file):
        if not f.is_file():
            raise FileNotFoundError(
                f"{f} not found: load_model expects the folder written by save_model, "
                f"holding {JSON_NAME} and {ARRAYS_NAME}."
            )
    try:
        doc = json.loads(json_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{json_file} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{json_file} is not a skedge model file (format {FORMAT!r}).")
    if doc.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{json_file} has format version {doc.get('format_version')!r}; this skedge "
            f"({__version__}) reads version {FORMAT_VERSION}."
        )
    expected = doc.get("arrays", {}).get("sha256")
    if expected != _sha256(arrays_file):
        raise ValueError(
            f"{arrays_file} does not match {json_file} (checksum differs): the two files come "
            "from different saves, or one was changed."
        )
    return _Decoder(st.load_file(str(arrays_file))).decode(doc["root"])
