"""Saving: the encoder that turns an estimator into JSON nodes and named arrays."""

from __future__ import annotations

import inspect
import json
import math
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator
from skorch import NeuralNetRegressor
from skorch.net import NeuralNet
from torch import nn

from .. import spaces
from .._torch import ACTIVATIONS, MLP
from ..spaces import DesignSpace
from ._format import (
    _BUILTIN_TYPES,
    _NUMERIC_KINDS,
    ARRAYS_NAME,
    FORMAT,
    FORMAT_VERSION,
    JSON_NAME,
    _class_path,
    _safetensors_numpy,
    _sha256,
    _versions,
)

__all__ = ["save_model"]


class _Encoder:
    """Turns an object graph into JSON nodes and a dict of named arrays."""

    def __init__(self):
        self.arrays = {}
        self._memo = {}  # id(estimator) -> reference number
        self._alive = []  # keep memoized objects alive so their ids stay unique

    def array(self, a):
        key = f"a{len(self.arrays)}"
        a = np.ascontiguousarray(a)
        if a.dtype.byteorder == ">":
            a = a.astype(a.dtype.newbyteorder("<"))
        self.arrays[key] = a
        return key

    def encode(self, v, where):
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, int) and not isinstance(v, np.integer):
            return int(v)
        if isinstance(v, float) and not isinstance(v, np.floating):
            return float(v) if math.isfinite(v) else {"__float__": repr(float(v))}
        if isinstance(v, np.generic):
            if v.dtype.kind not in _NUMERIC_KINDS + "U":
                raise self._unsupported(v, where)
            return {"__npscalar__": v.dtype.str, "value": self.encode(v.item(), where)}
        if isinstance(v, np.dtype):
            if v.fields is not None or v.kind not in _NUMERIC_KINDS + "OUS":
                raise self._unsupported(v, where)
            return {"__dtype__": v.str}
        if isinstance(v, np.ndarray):
            return self._ndarray(v, where)
        if isinstance(v, torch.Tensor):
            t = v.detach().cpu()
            if t.dtype == torch.bfloat16:
                raise TypeError(f"{where}: bfloat16 tensors are not supported by save_model.")
            return {"__tensor__": self.array(t.numpy()), "requires_grad": bool(v.requires_grad)}
        if isinstance(v, slice):
            return {"__slice__": [self.encode(x, where) for x in (v.start, v.stop, v.step)]}
        if isinstance(v, tuple):
            return {"__tuple__": [self.encode(x, f"{where}[{i}]") for i, x in enumerate(v)]}
        if isinstance(v, list):
            return [self.encode(x, f"{where}[{i}]") for i, x in enumerate(v)]
        if isinstance(v, dict):
            if all(isinstance(k, str) for k in v):
                return {"__dict__": {k: self.encode(x, f"{where}[{k!r}]") for k, x in v.items()}}
            return {"__items__": [[self.encode(k, where), self.encode(x, f"{where}[{k!r}]")]
                                  for k, x in v.items()]}
        if isinstance(v, type):
            return self._type(v, where)
        if isinstance(v, DesignSpace):
            return self._space(v, where)
        if isinstance(v, MLP):
            return self._mlp(v, where)
        if isinstance(v, BaseEstimator):
            ref = self._memo.get(id(v))
            if ref is not None:
                return {"__ref__": ref}
            self._memo[id(v)] = ref = len(self._memo)
            self._alive.append(v)
            if _is_skorch_net(v):
                return self._skorch(v, ref, where)
            return self._estimator(v, ref, where)
        raise self._unsupported(v, where)

    @staticmethod
    def _unsupported(v, where):
        return TypeError(
            f"{where}: cannot store a {type(v).__module__}.{type(v).__qualname__} in the safe "
            "format (it holds only plain values, arrays and scikit-learn/skedge estimators). "
            "Save its parts instead, or use joblib.dump for files you will only load yourself."
        )

    def _ndarray(self, a, where):
        if a.dtype.kind in _NUMERIC_KINDS:
            return {"__ndarray__": self.array(a)}
        if a.dtype.kind in "OUS":
            flat = [self.encode(x, f"{where}[{i}]") for i, x in enumerate(a.ravel().tolist())]
            return {"__list_array__": flat, "dtype": a.dtype.str, "shape": list(a.shape)}
        raise self._unsupported(a, where)

    def _type(self, t, where):
        if isinstance(t, type) and issubclass(t, np.generic) and getattr(np, t.__name__, None) is t:
            return {"__type__": f"numpy.{t.__name__}"}
        if t in _BUILTIN_TYPES.values():
            return {"__type__": t.__name__}
        raise TypeError(
            f"{where}: the class {_class_path(t)} cannot be stored in the safe format "
            "(only numpy scalar types and float/int/bool/str are)."
        )

    def _space(self, space, where):
        cls = type(space)
        if getattr(spaces, cls.__name__, None) is not cls:
            raise TypeError(
                f"{where}: only the design spaces of skedge.spaces can be stored, not {cls!r}."
            )
        names = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        kwargs = {p: getattr(space, p) for p in names}
        if cls(**kwargs) != space:
            raise TypeError(f"{where}: {space!r} cannot be rebuilt from {kwargs}.")
        return {"__space__": cls.__name__, "params": self.encode(kwargs, where)}

    def _mlp(self, net, where):
        config = _mlp_config(net, where)
        return {
            "__mlp__": self.encode(config, where),
            "training": bool(net.training),
            "requires_grad": [bool(p.requires_grad) for p in net.parameters()],
            "state_dict": self._state_dict(net, where),
        }

    def _state_dict(self, module, where):
        return {k: self.encode(t, f"{where}.{k}") for k, t in module.state_dict().items()}

    def _estimator(self, est, ref, where):
        state = est.__getstate__() if hasattr(est, "__getstate__") else dict(vars(est))
        if not isinstance(state, dict):
            raise self._unsupported(est, where)
        name = type(est).__name__
        return {
            "__estimator__": _class_path(type(est)),
            "id": ref,
            "state": {k: self.encode(v, f"{where}.{k}" if where else f"{name}.{k}")
                      for k, v in state.items()},
        }

    def _skorch(self, net, ref, where):
        if type(net) is not NeuralNetRegressor or net.module is not MLP:
            raise TypeError(
                f"{where}: only skorch NeuralNetRegressor nets around skedge._torch.MLP can be "
                f"stored in the safe format, not {type(net).__name__}({net.module!r})."
            )
        if not getattr(net, "initialized_", False):
            raise TypeError(f"{where}: the skorch net is not initialized (not fitted).")
        params, dropped = {}, []
        for key, value in net.get_params(deep=False).items():
            if key == "module":
                continue
            if key in ("criterion", "optimizer"):
                base = torch.nn if key == "criterion" else torch.optim
                if getattr(base, getattr(value, "__name__", ""), None) is not value:
                    raise TypeError(f"{where}: {key} {value!r} is not a class of {base.__name__}.")
                params[key] = value.__name__
            elif _is_plain(value):
                params[key] = self.encode(value, f"{where}.{key}")
            else:
                dropped.append(key)
        return {
            "__skorch__": "NeuralNetRegressor",
            "id": ref,
            "module": _class_path(MLP),
            "params": params,
            "dropped": sorted(dropped),
            "state_dict": self._state_dict(net.module_, where),
        }


def _is_plain(v):
    if v is None or isinstance(v, (bool, int, float, str)):
        return True
    if isinstance(v, (list, tuple)):
        return all(_is_plain(x) for x in v)
    return False


def _is_skorch_net(v):
    return isinstance(v, NeuralNet)


def _mlp_config(net, where):
    """Constructor arguments of a :class:`~skedge._torch.MLP` read back from its layers."""
    if type(net) is not MLP:
        raise TypeError(f"{where}: only skedge._torch.MLP modules can be stored, not a subclass.")
    layers = list(net.net)
    linears = [m for m in layers if isinstance(m, nn.Linear)]
    acts = [name for m in layers for name, cls in ACTIVATIONS.items() if type(m) is cls]
    drops = [m.p for m in layers if isinstance(m, nn.Dropout)]
    config = {
        "n_in": linears[0].in_features,
        "n_out": int(net.n_out),
        "hidden": tuple(m.out_features for m in linears[:-1]),
        "activation": acts[0] if acts else "relu",
        "dropout": float(drops[0]) if drops else 0.0,
    }
    rebuilt = MLP(**config)
    if [type(m) for m in rebuilt.net] != [type(m) for m in layers] or {
        k: v.shape for k, v in rebuilt.state_dict().items()
    } != {k: v.shape for k, v in net.state_dict().items()}:
        raise TypeError(f"{where}: this MLP was modified after construction; cannot store it.")
    return config


def save_model(estimator, path, *, overwrite=False):
    """Save a fitted model in skedge's safe format (no pickle).

    Writes a folder holding ``model.json`` (classes, parameters and structure)
    and ``arrays.safetensors`` (all arrays and network weights). See
    :mod:`skedge.persistence` for what is stored.

    Parameters
    ----------
    estimator : estimator
        A fitted (or unfitted) scikit-learn/skedge estimator or pipeline, e.g.
        from :func:`~skedge.make_performance_pipeline`.
    path : str or path-like
        Folder to write (created if needed).
    overwrite : bool, default=False
        Replace the two files of an earlier save in ``path``. Without it an
        existing non-empty folder is refused.

    Returns
    -------
    path : pathlib.Path
        The folder written.

    Raises
    ------
    TypeError
        When the model holds an object the format cannot store (the message
        names where it sits).
    FileExistsError
        When ``path`` exists, is not empty and ``overwrite`` is False.

    See Also
    --------
    load_model : the inverse.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from skedge import AccuracyRegressor, save_model, load_model
    >>> X = np.random.RandomState(0).rand(50, 3); y = 70 + 10 * X[:, 0]
    >>> reg = AccuracyRegressor(hidden_layer_sizes=(8,), max_epochs=2, random_state=0).fit(X, y)
    >>> folder = save_model(reg, tempfile.mkdtemp() + "/acc")
    >>> sorted(p.name for p in folder.iterdir())
    ['arrays.safetensors', 'model.json']
    >>> bool((load_model(folder).predict(X) == reg.predict(X)).all())
    True
    """
    st = _safetensors_numpy()
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} exists and is not a folder.")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise FileExistsError(
            f"{path} is not empty; pass overwrite=True to replace an earlier save there."
        )
    enc = _Encoder()
    root = enc.encode(estimator, type(estimator).__name__)
    path.mkdir(parents=True, exist_ok=True)
    arrays_file = path / ARRAYS_NAME
    st.save_file(enc.arrays, str(arrays_file), metadata={"format": FORMAT})
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "class": _class_path(type(estimator)),
        "versions": _versions(),
        "arrays": {"file": ARRAYS_NAME, "sha256": _sha256(arrays_file), "count": len(enc.arrays)},
        "root": root,
    }
    text = json.dumps(doc, indent=1, allow_nan=False)
    (path / JSON_NAME).write_text(text + "\n", encoding="utf-8")
    return path
