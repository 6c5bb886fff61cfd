"""Training inputs of the amortized optimizer: plausible (device, λ) rows from a few known devices.

Real benchmarks describe only tens of devices, far too few rows for a network
that must map *any* device to a design. :func:`sample_optimizer_inputs` turns
the known device rows into as many new rows as needed by two perturbations
that stay on the manifold of real hardware:

* **jitter**: every continuous positive spec (peak GOP/s, bandwidth, clock,
  on-chip memory, ...) is multiplied by independent log-normal noise
  ``exp(N(0, jitter))``: "the same chip, a little faster memory";
* **mixtures**: a convex combination of two known devices *of the same kind*,
  geometric (in log space) for positive columns, so that mixing a 10 GOP/s and
  a 1000 GOP/s phone gives a 100 GOP/s phone, not a 505 GOP/s one.

Columns that are categorical or discrete by nature (``kind``,
``batch_size``, ``precision_bits``) are never jittered nor averaged: a new
device takes them from its dominant parent. ``release_year`` and any column
holding zero or negative values are mixed linearly and not jittered.
Unknown entries (NaN) stay unknown: a new device is NaN wherever its dominant
parent is, so the missingness pattern of real spec sheets is preserved.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state

from ..devices import DEVICE_FEATURES
from ._rows import LAMBDA_RANGE, check_lambda_range

__all__ = ["sample_lambdas", "sample_optimizer_inputs"]

# Column roles: taken from the dominant parent / mixed linearly / mixed and jittered in log space.
_KEEP, _LINEAR, _LOG = 0, 1, 2
_FEATURE_ROLES = {"kind": _KEEP, "batch_size": _KEEP, "precision_bits": _KEEP,
                  "release_year": _LINEAR}


def sample_lambdas(n, n_lambdas=1, *, lambda_range=LAMBDA_RANGE, zero_fraction=0.1,
                   random_state=None):
    """Objective weights: log-uniform in ``lambda_range``, exactly 0 with probability ``zero_fraction``.

    Parameters
    ----------
    n : int
        Number of rows.
    n_lambdas : int, default=1
        Number of weight columns (1: latency; 2: latency and energy), drawn independently.
    lambda_range : (float, float), default=LAMBDA_RANGE
        :data:`~skedge.optimize.LAMBDA_RANGE`, (1e-3, 1).
    zero_fraction : float, default=0.1
        Probability of each weight being exactly zero ("accuracy only" for that term).
    random_state : int, RandomState instance or None

    Returns
    -------
    lam : ndarray of shape (n, n_lambdas)

    Examples
    --------
    >>> from skedge.optimize import sample_lambdas
    >>> lam = sample_lambdas(1000, lambda_range=(0.01, 1.0), zero_fraction=0.0, random_state=0)
    >>> lam.shape, bool(lam.min() >= 0.01), bool(lam.max() <= 1.0)
    ((1000, 1), True, True)
    """
    lo, hi = check_lambda_range(lambda_range)
    if not isinstance(zero_fraction, Real) or not 0 <= zero_fraction <= 1:
        raise ValueError(f"zero_fraction must be in [0, 1], got {zero_fraction!r}.")
    rng = check_random_state(random_state)
    lam = np.exp(rng.uniform(np.log(lo), np.log(hi), size=(int(n), int(n_lambdas))))
    lam[rng.random_sample(lam.shape) < zero_fraction] = 0.0
    return lam


def _roles(names, values, kind_column):
    """Role of each device column (see the module docstring)."""
    roles = np.full(values.shape[1], _LOG)
    for j, name in enumerate(names):
        roles[j] = _FEATURE_ROLES.get(name, _LOG)
    finite = np.where(np.isfinite(values), values, 1.0)
    roles[(roles == _LOG) & (finite <= 0).any(axis=0)] = _LINEAR
    if kind_column is not None:
        roles[kind_column] = _KEEP
    return roles


def sample_optimizer_inputs(devices, n, *, n_lambdas=1, lambda_range=LAMBDA_RANGE,
                            lambda_zero_fraction=0.1, jitter=0.1, mix_fraction=0.5,
                            kind_column=0, random_state=None):
    """Sample optimizer rows ``[device columns..., λ...]`` around known devices.

    Each row starts from a known device drawn uniformly; with probability
    ``mix_fraction`` it is replaced by a random convex mixture (weight
    ``w ~ U(0, 1)``) of that device and another device of the same kind; then
    its continuous positive specs get multiplicative log-normal ``jitter``.
    See the module docstring for how each column is treated. λ columns are
    drawn by :func:`sample_lambdas`.

    Parameters
    ----------
    devices : DataFrame or array-like of shape (n_devices, n_columns)
        Known device rows, laid out like the device columns of the pair table
        (:data:`~skedge.devices.DEVICE_FEATURES`, then optional signature
        columns). A DataFrame is matched by column name (``kind``,
        ``batch_size``, ``precision_bits``, ``release_year``); an array whose
        first 12 columns are assumed to follow DEVICE_FEATURES when it has at
        least 12 columns.
    n : int
        Number of rows to draw.
    n_lambdas : int, default=1
        1 (``λ_lat``) or 2 (``λ_lat, λ_en``).
    lambda_range : (float, float), default=LAMBDA_RANGE
        λ is log-uniform in this range (:data:`~skedge.optimize.LAMBDA_RANGE`) ...
    lambda_zero_fraction : float, default=0.1
        ... except for this fraction of entries, which are exactly 0.
    jitter : float, default=0.1
        Standard deviation of the log-normal factor on positive continuous
        columns (0.1 is about ±10 %). 0 keeps the specs of the known or mixed devices.
    mix_fraction : float, default=0.5
        Fraction of rows that are mixtures of two devices of the same kind
        (0 disables mixing).
    kind_column : int or None, default=0
        Position of the device ``kind`` column (never jittered; mixtures only
        pair devices of one kind). None: no kind column.
    random_state : int, RandomState instance or None

    Returns
    -------
    X : ndarray of shape (n, n_columns + n_lambdas)

    Examples
    --------
    >>> import numpy as np
    >>> from skedge.optimize import sample_optimizer_inputs
    >>> D = np.array([[0, 1, 32, 80, 30, 4, 2.5, 2, 4, np.nan, 10, 2018],
    ...               [0, 1, 32, 200, 60, 8, 3.0, 4, 8, 5.0, 7, 2021]])
    >>> X = sample_optimizer_inputs(D, 5, random_state=0)
    >>> X.shape
    (5, 13)
    >>> X[:, 0].tolist()   # the kind is kept
    [0.0, 0.0, 0.0, 0.0, 0.0]
    """
    if isinstance(devices, pd.DataFrame):
        names = [str(c) for c in devices.columns]
        if "kind" in names:
            kind_column = names.index("kind")
        values = devices.to_numpy(dtype=np.float64)
    else:
        values = np.asarray(devices, dtype=np.float64)
        if values.ndim == 1:
            values = values[None, :]
        names = list(DEVICE_FEATURES) if values.ndim == 2 and values.shape[1] >= len(
            DEVICE_FEATURES) else []
    if values.ndim != 2 or values.shape[0] == 0 or values.shape[1] == 0:
        raise ValueError(
            f"devices must be a non-empty 2-D table of device rows, got shape {values.shape}."
        )
    if np.isinf(values).any():
        raise ValueError("devices hold infinite values.")
    if not isinstance(n, Integral) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}.")
    if n_lambdas not in (1, 2):
        raise ValueError(f"n_lambdas must be 1 or 2, got {n_lambdas!r}.")
    if not isinstance(jitter, Real) or not np.isfinite(jitter) or jitter < 0:
        raise ValueError(f"jitter must be a finite non-negative number, got {jitter!r}.")
    if not isinstance(mix_fraction, Real) or not 0 <= mix_fraction <= 1:
        raise ValueError(f"mix_fraction must be in [0, 1], got {mix_fraction!r}.")
    if kind_column is not None and not (
        isinstance(kind_column, Integral) and 0 <= kind_column < values.shape[1]
    ):
        raise ValueError(
            f"kind_column must be None or a column position below {values.shape[1]}, "
            f"got {kind_column!r}."
        )
    rng = check_random_state(random_state)
    roles = _roles(names, values, kind_column)

    first = rng.randint(len(values), size=n)
    out = values[first].copy()
    # Partner of the same kind (NaN kinds form one group); a kind with one device mixes with itself.
    kind = (np.zeros(len(values)) if kind_column is None
            else np.nan_to_num(values[:, kind_column], nan=-1.0))
    mixed = rng.random_sample(n) < mix_fraction
    if mixed.any():
        partner = first.copy()
        for k in np.unique(kind[first[mixed]]):
            members = np.flatnonzero(kind == k)
            rows = np.flatnonzero(mixed & (kind[first] == k))
            partner[rows] = members[rng.randint(len(members), size=len(rows))]
        w = rng.random_sample(n)[:, None]
        a, b = values[first], values[partner]
        # The parent with the larger weight dominates: its NaNs stay NaN, and where only
        # the other parent is unknown the dominant value is kept.
        wd = np.maximum(w, 1 - w)
        dom = np.where(w >= 0.5, a, b)
        other = np.where(w >= 0.5, b, a)
        other = np.where(np.isnan(other), dom, other)
        with np.errstate(invalid="ignore", divide="ignore"):
            log_mix = np.exp(wd * np.log(dom) + (1 - wd) * np.log(other))
        lin_mix = wd * dom + (1 - wd) * other
        mix = np.select([roles == _KEEP, roles == _LINEAR], [dom, lin_mix], log_mix)
        out[mixed] = mix[mixed]
    if jitter > 0:
        noise = np.exp(rng.normal(0.0, jitter, size=out.shape))
        out = np.where(roles[None, :] == _LOG, out * noise, out)
    lam = sample_lambdas(n, n_lambdas, lambda_range=lambda_range,
                         zero_fraction=lambda_zero_fraction, random_state=rng)
    return np.hstack([out, lam])
