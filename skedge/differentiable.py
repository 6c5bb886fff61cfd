"""Fitted predictors as frozen torch functions of soft designs.

The optimizer needs d(prediction)/d(design) where a design is *soft*: per
choice, a probability vector over its options, laid out like the one-hot code
(``space.n_one_hot`` columns). :func:`torch_predictor` turns a fitted
regressor or pipeline into such a function of ``(P, D)``: ``P`` the soft
designs, ``D`` the raw device columns of the pair table (spec features and
signature, exactly as the pipeline was fitted on, without the design columns).
Device columns enter through the fitted numpy encoders (no gradient is needed
through them); design columns through each encoder's ``torch_transform``.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from ._torch import as_tensor
from .predictors import _MLPRegressorBase
from .preprocessing import DesignOneHotEncoder
from .spaces import get_space

__all__ = ["TorchPredictor", "torch_predictor"]


def _column_indices(cols, n_total):
    if isinstance(cols, slice):
        return list(range(n_total))[cols]
    cols = np.asarray(cols)
    if cols.dtype == bool:
        return list(np.flatnonzero(cols))
    if cols.dtype.kind in "iu":
        return [int(c) for c in cols]
    raise ValueError(
        "torch_predictor needs ColumnTransformer columns given by position; got "
        f"{cols!r}. Build the pipeline with integer columns (see make_performance_pipeline)."
    )


class _Identity:
    """The design block of a bare regressor fitted on one-hot designs."""

    torch_transform = staticmethod(lambda P: P)


class TorchPredictor:
    """A fitted predictor as a frozen, differentiable function ``f(P, D)``.

    Create it with :func:`torch_predictor`. The regressor's networks are
    copied and their parameters frozen, so nothing done through this object
    can change the fitted estimator.

    Attributes
    ----------
    space : DesignSpace
    n_device_columns : int
        Width expected of ``D`` (0 for accuracy predictors).
    """

    def __init__(self, space, design_steps, device_steps, regressor, n_device_columns, order):
        self.space = space
        self._design_steps = design_steps
        self._device_steps = device_steps
        self._order = order
        self.n_device_columns = n_device_columns
        self._regressor = copy.copy(regressor)
        self._regressor.estimators_ = [copy.deepcopy(net) for net in regressor.estimators_]
        for net in self._regressor.estimators_:
            for p in net.module_.parameters():
                p.requires_grad_(False)
        self._fold = self._folded()

    def encode_devices(self, D):
        """Numpy-encode raw device columns once (reuse it across many calls)."""
        if self.n_device_columns == 0:
            return None
        D = np.asarray(D, dtype=np.float64)
        if D.ndim == 1:
            D = D[None, :]
        if D.shape[1] != self.n_device_columns:
            raise ValueError(
                f"expected {self.n_device_columns} device columns, got {D.shape[1]}."
            )
        return {name: as_tensor(t.transform(D[:, cols])) for name, t, cols in self._device_steps}

    def __call__(self, P, D=None, *, encoded=None):
        """Predict from soft designs ``P`` (n, n_one_hot) and device columns ``D`` (n, k).

        ``D`` may hold a single row, broadcast to every design. Pass
        ``encoded=self.encode_devices(D)`` instead of ``D`` to skip re-encoding.
        """
        if encoded is None:
            encoded = self.encode_devices(D) if self.n_device_columns else {}
        parts = {name: t.torch_transform(P) for name, t in self._design_steps}
        for name, Z in (encoded or {}).items():
            parts[name] = Z.expand(P.shape[0], -1) if Z.shape[0] == 1 else Z
        Z = torch.cat([parts[name] for name in self._order], dim=1)
        return self._regressor.torch_forward(Z)

    def hard(self, codes, encoded=None, rows=None):
        """Predict hard designs given by the positions of their ones in the one-hot code.

        The same values as ``self(P, encoded=...)`` for the one-hot ``P`` (to float32
        rounding), at a fraction of the cost: with a one-hot design block, the first
        layer of each member is a sum of ``n_choices`` of its (standardized) columns
        plus a term per device row, computed once per distinct device.

        Parameters
        ----------
        codes : torch.LongTensor of shape (n, n_choices)
            ``designs + space.option_offsets``.
        encoded : dict, default=None
            :meth:`encode_devices` of the distinct device rows.
        rows : torch.LongTensor of shape (n,), default=None
            The distinct device row of each design (None: the first for all).

        Returns
        -------
        pred : torch.Tensor of shape (n,)
            In target units, float32.
        """
        if self._fold is None:  # an encoder that is not the identity on the one-hot code
            P = torch.zeros(len(codes), self.space.n_one_hot)
            P.scatter_(1, codes, 1.0)
            enc = {k: v[rows] if rows is not None else v[:1] for k, v in (encoded or {}).items()}
            return self(P, encoded=enc if self.n_device_columns else None)
        members, dev_mean, dev_scale = self._fold
        if self.n_device_columns:
            E = torch.cat([encoded[name] for name in self._order if name in encoded], dim=1)
            E = (E - dev_mean) / dev_scale
        outs = []
        for table, const, rest, W_dev in members:
            h = torch.nn.functional.embedding_bag(codes, table, mode="sum")
            if W_dev is None:
                h.add_(const)
            else:
                per_device = E @ W_dev.T + const
                h.add_(per_device[rows] if rows is not None else per_device[:1])
            out = rest(h)
            outs.append(out.squeeze(-1) if out.dim() == 2 and out.shape[1] == 1 else out)
        reg = self._regressor
        return reg._inverse(reg._unscale(torch.stack(outs)).mean(dim=0))

    def _folded(self):
        """The first layers folded for :meth:`hard`, or None where they cannot be.

        ``(members, device_mean, device_scale)``: per member the first-layer
        table of the one-hot columns (standardization included), its constant,
        the rest of the network and the device columns' weights (None without
        device columns); then the standardization of the device columns.
        """
        # Only the one-hot code itself can be folded (an embedding is another linear map
        # before the first layer; not worth the special case).
        one_hot = [name for name, t in self._design_steps
                   if isinstance(t, (DesignOneHotEncoder, _Identity))]
        if len(self._design_steps) != 1 or not one_hot or self._order[0] != one_hot[0]:
            return None
        n = self.space.n_one_hot
        reg, members = self._regressor, []
        mean = torch.as_tensor(reg.x_mean_, dtype=torch.float32)
        scale = torch.as_tensor(reg.x_scale_, dtype=torch.float32)
        for net in reg.estimators_:
            layers = getattr(net.module_, "net", None)
            if not isinstance(layers, torch.nn.Sequential) or \
                    not isinstance(layers[0], torch.nn.Linear) or \
                    layers[0].weight.device.type != "cpu":
                return None
            W, b = layers[0].weight, layers[0].bias
            Wd = W[:, :n] / scale[:n]
            W_dev = W[:, n:] if W.shape[1] > n else None
            members.append((Wd.T.contiguous(), b - Wd @ mean[:n], layers[1:], W_dev))
        return members, mean[n:], scale[n:]


def torch_predictor(estimator, space):
    """Expose a fitted predictor as a frozen torch function of soft designs.

    Parameters
    ----------
    estimator : fitted Pipeline or regressor
        Either ``Pipeline([design encoder, regressor])`` (accuracy), or
        ``Pipeline([ColumnTransformer(design / device / signature blocks),
        regressor])`` as built by :func:`~skedge.pipelines.make_performance_pipeline`,
        or a bare skedge regressor fitted on one-hot designs (+ device columns).
    space : DesignSpace or str

    Returns
    -------
    f : TorchPredictor
        ``f(P, D)`` with ``P`` a float tensor (n, space.n_one_hot) and ``D`` the
        raw device columns; returns a tensor (n,) in target units.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skedge.spaces import NB201Space
    >>> from skedge.pipelines import make_accuracy_pipeline
    >>> from skedge.differentiable import torch_predictor
    >>> space = NB201Space(); X = space.sample(200, random_state=0)
    >>> y = 80 + (X == 3).sum(axis=1)
    >>> pipe = make_accuracy_pipeline(space, hidden_layer_sizes=(16,), max_epochs=3,
    ...                               random_state=0).fit(X, y)
    >>> f = torch_predictor(pipe, space)
    >>> P = torch.full((1, space.n_one_hot), 0.2, requires_grad=True)
    >>> f(P).sum().backward(); P.grad.shape
    torch.Size([1, 30])
    """
    space = get_space(space)
    check_is_fitted(estimator)
    if isinstance(estimator, _MLPRegressorBase):
        n_dev = estimator.n_features_in_ - space.n_one_hot
        if n_dev < 0:
            raise ValueError(
                f"the regressor expects {estimator.n_features_in_} features, fewer than the "
                f"{space.n_one_hot} one-hot columns of {space!r}."
            )

        class _Raw:
            transform = staticmethod(lambda D: D)

        steps = [("device", _Raw(), list(range(n_dev)))] if n_dev else []
        return TorchPredictor(space, [("design", _Identity())], steps, estimator, n_dev,
                              ["design"] + (["device"] if n_dev else []))
    if not isinstance(estimator, Pipeline) or len(estimator.steps) != 2:
        raise ValueError(
            "torch_predictor supports a skedge regressor or a two-step Pipeline "
            "(encoder or ColumnTransformer, then a skedge regressor)."
        )
    features, regressor = estimator.steps[0][1], estimator.steps[-1][1]
    if not isinstance(regressor, _MLPRegressorBase):
        raise ValueError(f"the last step must be a skedge regressor, got {type(regressor).__name__}.")
    if not isinstance(features, ColumnTransformer):
        if not hasattr(features, "torch_transform"):
            raise ValueError(f"{type(features).__name__} has no torch_transform for soft designs.")
        return TorchPredictor(space, [("design", features)], [], regressor, 0, ["design"])
    n_total = features.n_features_in_
    n = space.n_choices
    design_steps, device_steps, order = [], [], []
    for name, trans, cols in features.transformers_:
        if trans == "drop" or name == "remainder":
            continue
        idx = _column_indices(cols, n_total)
        if not idx:
            continue
        if all(i < n for i in idx):
            if idx != list(range(n)) or not hasattr(trans, "torch_transform"):
                raise ValueError(
                    f"block {name!r} must take all {n} design columns with an encoder that "
                    "has torch_transform."
                )
            design_steps.append((name, trans))
        elif all(i >= n for i in idx):
            if trans == "passthrough":
                trans = type("_Pass", (), {"transform": staticmethod(lambda D: D)})()
            device_steps.append((name, trans, [i - n for i in idx]))
        else:
            raise ValueError(f"block {name!r} mixes design and device columns.")
        order.append(name)
    return TorchPredictor(space, design_steps, device_steps, regressor, n_total - n, order)
