"""The design objective every optimizer in skedge minimizes.

.. math::

    f(x; d, \\lambda) = -\\frac{Acc(x)}{100}
        + \\lambda_{lat} \\frac{Lat(x; d)}{Lat_{ref}(d)}
        + \\lambda_{en} \\frac{En(x; d)}{En_{ref}(d)}

``Acc`` is in percent, so the first term is accuracy as a fraction.
``Lat_ref(d)`` (``En_ref(d)``) is the geometric mean of the *predicted* latency
(energy) of a fixed set of reference designs on device ``d``. Dividing by it
makes λ mean the same on every device: ``λ_lat = 0.05`` says "a design as slow
as the typical reference design must buy 5 accuracy points", whether the device
answers in microseconds or seconds. It is computed from the predictors alone,
so it is available for any device, seen or not.

Rows of the optimizer input ``X`` are ``[device columns..., λ_lat]`` or, with
an energy predictor, ``[device columns..., λ_lat, λ_en]``; the device columns
are exactly those the latency predictor takes after the design columns (spec
features, then the signature if the pipeline has one).
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from ..differentiable import torch_predictor
from ..preprocessing import DeviceFeatureEncoder
from ..spaces import get_space
from ._rows import split_rows

__all__ = ["Objective"]

_CHUNK = 65536


class Objective:
    """Predicted objective of designs on devices, in numpy (hard) and torch (soft) form.

    Parameters
    ----------
    space : DesignSpace or str
    accuracy : fitted estimator
        Predicts accuracy (%) from design index rows (e.g.
        :func:`~skedge.make_accuracy_pipeline`).
    latency : fitted estimator
        Predicts latency from pair rows ``[design, device columns]`` (e.g.
        :func:`~skedge.make_performance_pipeline`).
    energy : fitted estimator, default=None
        Like ``latency``, for energy; optional (an objective without energy works).
    n_reference : int, default=32
        Designs sampled (seed 0) to define the per-device normalization.

    Attributes
    ----------
    n_device_columns : int
    n_lambdas : int
        1 without energy, 2 with.
    reference_designs : ndarray
    """

    def __init__(self, space, accuracy, latency, energy=None, *, n_reference=32):
        self.space = get_space(space)
        for name, est in (("accuracy", accuracy), ("latency", latency), ("energy", energy)):
            if est is None and name != "energy":
                raise ValueError(f"the {name} predictor is required.")
            if est is not None:
                try:
                    check_is_fitted(est)
                except (NotFittedError, TypeError) as exc:
                    raise ValueError(f"the {name} predictor is not fitted: {exc}") from None
        self.accuracy, self.latency, self.energy = accuracy, latency, energy
        self.f_acc = torch_predictor(accuracy, self.space)
        self.f_lat = torch_predictor(latency, self.space)
        self.f_en = torch_predictor(energy, self.space) if energy is not None else None
        self.n_device_columns = self.f_lat.n_device_columns
        if self.f_en is not None and self.f_en.n_device_columns != self.n_device_columns:
            raise ValueError("the latency and energy predictors take different device columns.")
        self.n_lambdas = 1 if energy is None else 2
        self.reference_designs = self.space.sample(n_reference, random_state=0)

    @property
    def lambda_names(self):
        return ["lambda_latency"] + (["lambda_energy"] if self.energy is not None else [])

    # ---------------------------------------------------------------- inputs
    def split(self, X):
        """Validate optimizer rows and split them into (device columns, λ).

        See :func:`~skedge.optimize.split_rows`; besides, device columns may hold
        NaN only when the latency predictor imputes unknown features.
        """
        D, lam = split_rows(X, self.n_device_columns, self.lambda_names)
        if np.isnan(D).any() and not _predictor_allows_nan(self.latency):
            raise ValueError("device columns hold NaN and the latency predictor cannot impute.")
        return D, lam

    # ---------------------------------------------------------------- numpy
    def metrics(self, designs, D):
        """Predicted accuracy, latency (and energy) of designs on devices.

        ``D`` is one device row (broadcast) or one row per design.
        Returns a dict of float arrays ``accuracy``, ``latency`` (, ``energy``).

        The values come from the frozen torch copies of the predictors applied
        to hard one-hot designs (they agree with ``predict`` to float32
        precision). This skips scikit-learn's per-column encoders, which cost
        about ten times more than the networks themselves for the small
        batches of a search, and encodes each distinct device row only once;
        the first layer of each network is a sum of one column per choice plus
        a term per distinct device row (:meth:`TorchPredictor.hard
        <skedge.differentiable.TorchPredictor.hard>`).
        """
        designs = self.space.validate(designs)
        D = np.atleast_2d(np.asarray(D, dtype=np.float64))
        if len(D) not in (1, len(designs)):
            raise ValueError(
                f"D must hold one device row or one per design ({len(designs)}); got {len(D)}."
            )
        funcs = {"accuracy": self.f_acc, "latency": self.f_lat}
        if self.f_en is not None:
            funcs["energy"] = self.f_en
        out = {name: np.empty(len(designs)) for name in funcs}
        if len(designs) == 0:
            return out
        uniq, inverse = _unique_rows(D)
        inverse = torch.as_tensor(inverse)
        encoded = {name: f.encode_devices(uniq) for name, f in funcs.items() if name != "accuracy"}
        codes = torch.as_tensor(designs + self.space.option_offsets)
        with torch.no_grad():
            for s in range(0, len(designs), _CHUNK):
                part = codes[s:s + _CHUNK]
                rows = inverse[s:s + _CHUNK] if len(D) > 1 else None
                for name, f in funcs.items():
                    out[name][s:s + len(part)] = f.hard(
                        part, encoded.get(name), rows).double().numpy()
        return out

    def references(self, D):
        """Per-device normalizers (geometric mean over the reference designs).

        Returns an array (n_devices, n_lambdas): latency reference, then energy.
        """
        D = np.atleast_2d(np.asarray(D, dtype=np.float64))
        uniq, inverse = _unique_rows(D)
        R = self.reference_designs
        m = self.metrics(np.tile(R, (len(uniq), 1)), np.repeat(uniq, len(R), axis=0))
        return self._geometric_means(m, len(uniq))[inverse]

    def _geometric_means(self, m, n_devices):
        """Per device, the geometric mean of the reference designs' metrics ``m`` (device-major)."""
        names = ["latency"] + (["energy"] if self.energy is not None else [])
        return np.stack([np.exp(np.log(np.maximum(m[name], 1e-12))
                                .reshape(n_devices, len(self.reference_designs)).mean(1))
                         for name in names], axis=1)

    def value_from_metrics(self, metrics, lam, refs):
        """Objective from precomputed metrics; broadcasts over designs and λ rows."""
        f = -np.asarray(metrics["accuracy"]) / 100.0
        f = f + lam[..., 0] * metrics["latency"] / refs[..., 0]
        if self.energy is not None:
            f = f + lam[..., 1] * metrics["energy"] / refs[..., 1]
        return f

    def value(self, designs, X):
        """Objective of ``designs[i]`` for optimizer row ``X[i]`` (or one row for all)."""
        D, lam = self.split(X)
        m = self.metrics(designs, D)
        return self.value_from_metrics(m, lam, self.references(D))

    def true_value(self, truth, designs, devices, lam):
        """The objective of ``designs[i]`` at ``lam[i]`` on ``devices[i]``, on true metrics.

        ``truth(designs, devices)`` returns the true ``"accuracy"``,
        ``"latency"`` (and ``"energy"``) of each design on its device, as
        :func:`~skedge.datasets.simulated_truth` does; each device is
        normalized by the true geometric mean over :attr:`reference_designs`,
        as :meth:`value` is by the predicted one. ``lam`` has shape
        (n, n_lambdas).
        """
        devices = list(devices)
        unique, inverse = np.unique(np.asarray(devices), return_inverse=True)
        R = self.reference_designs
        ref = truth(np.tile(R, (len(unique), 1)), list(np.repeat(unique, len(R))))
        refs = self._geometric_means(ref, len(unique))[inverse]
        lam = np.asarray(lam, dtype=np.float64).reshape(len(devices), -1)
        return self.value_from_metrics(truth(designs, devices), lam, refs)

    # ---------------------------------------------------------------- torch
    def torch_value(self, P, encoded, lam, refs):
        """Differentiable objective of soft designs ``P``.

        Parameters
        ----------
        P : torch.Tensor (n, space.n_one_hot)
        encoded : tuple
            ``(lat_enc, en_enc)`` from :meth:`encode`.
        lam : torch.Tensor (n, n_lambdas)
        refs : torch.Tensor (n, n_lambdas)
        """
        lat_enc, en_enc = encoded
        f = -self.f_acc(P) / 100.0 + lam[:, 0] * self.f_lat(P, encoded=lat_enc) / refs[:, 0]
        if self.f_en is not None:
            f = f + lam[:, 1] * self.f_en(P, encoded=en_enc) / refs[:, 1]
        return f

    def encode(self, D):
        """Encode device columns once for :meth:`torch_value`."""
        return (
            self.f_lat.encode_devices(D),
            self.f_en.encode_devices(D) if self.f_en is not None else None,
        )

    def torch_refs(self, D):
        return torch.as_tensor(self.references(D), dtype=torch.float32)


def _unique_rows(D):
    """Distinct rows of ``D`` (NaN equal to NaN) and the inverse index.

    >>> uniq, inverse = _unique_rows(np.array([[2.0], [2.0], [1.0], [2.0]]))
    >>> uniq.ravel().tolist(), inverse.tolist()
    ([1.0, 2.0], [1, 1, 0, 1])
    """
    if len(D) == 1:
        return D, np.zeros(1, dtype=np.int64)
    # np.unique treats NaN as distinct from itself; +inf stands in (inf is rejected upstream).
    key = np.where(np.isnan(D), np.inf, D)
    # A search repeats each device row for a block of designs: sorting only the first
    # row of each run of equal rows is the same result at a fraction of the cost.
    head = np.empty(len(key), dtype=bool)
    head[0] = True
    np.any(key[1:] != key[:-1], axis=1, out=head[1:])
    heads = np.flatnonzero(head)
    _, first, inverse = np.unique(key[heads], axis=0, return_index=True, return_inverse=True)
    return D[heads[first]], inverse.reshape(-1)[np.cumsum(head) - 1]


def _predictor_allows_nan(est):
    """True when the predictor imputes unknown device features (NaN) itself."""
    if isinstance(est, Pipeline) and isinstance(est.steps[0][1], ColumnTransformer):
        return any(isinstance(t, DeviceFeatureEncoder) for _, t, _ in est.steps[0][1].transformers_)
    return False
