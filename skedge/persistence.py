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
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import re
from pathlib import Path

import numpy as np

from ._version import __version__

__all__ = ["load_model", "save_model"]

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
        import safetensors.numpy as st
    except ImportError as exc:  # pragma: no cover - safetensors is a test dependency
        raise ImportError(
            "save_model/load_model need the 'safetensors' package: "
            "pip install 'skedge[safe]' (or pip install safetensors). "
            "joblib.dump/joblib.load work without it, for trusted files only."
        ) from exc
    return st


def _class_path(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


# ====================================================================== save
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
        import torch
        from sklearn.base import BaseEstimator

        from ._torch import MLP
        from .spaces import DesignSpace

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
        import inspect

        from . import spaces

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
        import torch
        from skorch import NeuralNetRegressor

        from ._torch import MLP

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
    try:
        from skorch.net import NeuralNet
    except ImportError:  # pragma: no cover - skorch is a dependency
        return False
    return isinstance(v, NeuralNet)


def _mlp_config(net, where):
    """Constructor arguments of a :class:`~skedge._torch.MLP` read back from its layers."""
    from torch import nn

    from ._torch import ACTIVATIONS, MLP

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


def _versions():
    import sklearn
    import torch

    out = {"skedge": __version__, "scikit-learn": sklearn.__version__,
           "numpy": np.__version__, "torch": torch.__version__}
    try:
        import skorch

        out["skorch"] = skorch.__version__
    except ImportError:  # pragma: no cover
        pass
    return out


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ====================================================================== load
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
        import torch

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
        import torch

        from ._torch import MLP, seeded

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
        import torch
        from skorch import NeuralNetRegressor

        from ._torch import MLP, seeded

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
    from . import spaces
    from .spaces import DesignSpace

    cls = getattr(spaces, name, None) if _IDENTIFIER.match(str(name)) else None
    if not (isinstance(cls, type) and issubclass(cls, DesignSpace)):
        raise ValueError(f"the model file names an unknown design space {name!r}.")
    return cls


def _resolve_estimator(path):
    """The estimator class at ``path``, only from scikit-learn or skedge."""
    from sklearn.base import BaseEstimator

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
    try:
        from skorch.net import NeuralNet
    except ImportError:  # pragma: no cover
        return False
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
