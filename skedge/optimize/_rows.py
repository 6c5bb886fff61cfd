"""Optimizer rows ``[device columns..., λ_lat(, λ_en)]`` and the one λ range.

Every optimizer in skedge answers *rows*: the device columns of one device
(as the latency predictor takes them after the design columns), then one
objective weight per penalized metric. This module is the one place that

* packs devices and weights into rows (:func:`optimizer_rows`) and splits and
  checks them again (:func:`split_rows`);
* defines the range of λ the amortized optimizer is trained on
  (:data:`LAMBDA_RANGE`), which the samplers, the default λ sweep
  (:func:`lambda_sweep`, ``DEFAULT_LAMBDAS``) and the command line read;
* warns when a λ lies outside the range an optimizer was trained on
  (:func:`check_lambdas`).
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.utils.validation import check_array

__all__ = [
    "DEFAULT_LAMBDAS",
    "LAMBDA_RANGE",
    "OptimizerMixin",
    "check_lambda_range",
    "check_lambdas",
    "lambda_sweep",
    "optimizer_rows",
    "split_rows",
]

class OptimizerMixin:
    """Tags of the estimators that answer optimizer rows with designs.

    They take no target, and NaN in a device column is an unknown spec (accepted
    when the latency predictor imputes it, see :meth:`Objective.split
    <skedge.optimize.Objective.split>`). Put it before ``BaseEstimator``.
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        tags.input_tags.allow_nan = True
        return tags


#: λ range the amortized optimizer trains on (log-uniform, plus exact zeros), and
#: the range every default sweep stays in.
LAMBDA_RANGE = (1e-3, 1.0)


def check_lambda_range(lambda_range):
    """Validate a ``(low, high)`` λ range with ``0 < low <= high``; returns two floats.

    Examples
    --------
    >>> from skedge.optimize import check_lambda_range
    >>> check_lambda_range((1e-3, 1))
    (0.001, 1.0)
    """
    try:
        lo, hi = (float(v) for v in lambda_range)
    except (TypeError, ValueError):
        raise ValueError(
            f"lambda_range must be a pair (low, high), got {lambda_range!r}."
        ) from None
    if not (np.isfinite(lo) and np.isfinite(hi) and 0 < lo <= hi):
        raise ValueError(
            f"lambda_range must satisfy 0 < low <= high (log-uniform), got {lambda_range!r}."
        )
    return lo, hi


def lambda_sweep(n_lambdas=1, *, lambda_range=LAMBDA_RANGE, n=25, fixed=None):
    """The default λ sweep: 0, then ``n`` log-spaced values spanning ``lambda_range``.

    Parameters
    ----------
    n_lambdas : {1, 2}, default=1
        Weights per row. With 2 and ``fixed=None``: the grid of every pair of
        0 and 9 log-spaced values.
    lambda_range : (float, float), default=LAMBDA_RANGE
    n : int, default=25
        Log-spaced values of the sweep (one weight).
    fixed : float, default=None
        With ``n_lambdas=2``: sweep λ_lat and keep λ_en at this value.

    Returns
    -------
    lambdas : ndarray of shape (n + 1,) for one weight, else (n_rows, 2)

    Examples
    --------
    >>> from skedge.optimize import lambda_sweep
    >>> lam = lambda_sweep()
    >>> lam.shape, float(lam[0]), float(lam[1]), float(lam[-1])
    ((26,), 0.0, 0.001, 1.0)
    >>> lambda_sweep(2, fixed=0.02).shape
    (26, 2)
    """
    lo, hi = check_lambda_range(lambda_range)
    sweep = np.r_[0.0, np.logspace(np.log10(lo), np.log10(hi), n)]
    if n_lambdas == 1:
        return sweep
    if n_lambdas != 2:
        raise ValueError(f"n_lambdas must be 1 or 2, got {n_lambdas!r}.")
    if fixed is not None:
        return np.column_stack([sweep, np.full(len(sweep), float(fixed))])
    coarse = np.r_[0.0, np.logspace(np.log10(lo), np.log10(hi), 9)]
    return np.array([(a, b) for a in coarse for b in coarse])


#: Default λ_lat sweep: no latency pressure, then :data:`LAMBDA_RANGE` log-spaced (25 values).
DEFAULT_LAMBDAS = lambda_sweep()


def optimizer_rows(devices, lambdas):
    """Rows ``[device columns..., λ...]``: every device with every λ row, device-major.

    Parameters
    ----------
    devices : array-like of shape (n_devices, n_device_columns) or (n_device_columns,)
    lambdas : array-like of shape (n_lambda_rows, n_lambdas), or 1-D (one weight each)

    Returns
    -------
    X : ndarray of shape (n_devices * n_lambda_rows, n_device_columns + n_lambdas)

    Examples
    --------
    >>> from skedge.optimize import optimizer_rows
    >>> optimizer_rows([[1.0, 2.0], [3.0, 4.0]], [0.0, 0.1]).tolist()
    [[1.0, 2.0, 0.0], [1.0, 2.0, 0.1], [3.0, 4.0, 0.0], [3.0, 4.0, 0.1]]
    """
    D = np.atleast_2d(np.asarray(devices, dtype=np.float64))
    lam = np.asarray(lambdas, dtype=np.float64)
    lam = lam[:, None] if lam.ndim == 1 else np.atleast_2d(lam)
    if D.ndim != 2 or lam.ndim != 2:
        raise ValueError(
            f"devices must be rows of device columns and lambdas rows of weights; got shapes "
            f"{np.shape(devices)} and {np.shape(lambdas)}."
        )
    return np.hstack([np.repeat(D, len(lam), axis=0), np.tile(lam, (len(D), 1))])


def split_rows(X, n_device_columns, lambda_names):
    """Check optimizer rows and split them into (device columns, λ).

    Parameters
    ----------
    X : array-like of shape (n_rows, n_device_columns + len(lambda_names)) or 1-D (one row)
    n_device_columns : int
    lambda_names : list of str
        Names of the weight columns, for the error message.

    Returns
    -------
    D : ndarray of shape (n_rows, n_device_columns)
        May hold NaN (unknown specs); infinite values are refused.
    lam : ndarray of shape (n_rows, len(lambda_names))
        Finite and non-negative.

    Examples
    --------
    >>> from skedge.optimize import split_rows
    >>> D, lam = split_rows([[1.0, 2.0, 0.1]], 2, ["lambda_latency"])
    >>> D.tolist(), lam.tolist()
    ([[1.0, 2.0]], [[0.1]])
    """
    if np.ndim(X) == 1:
        X = np.asarray(X, dtype=np.float64)[None, :]
    X = check_array(X, dtype=np.float64, ensure_all_finite=False, ensure_min_samples=0,
                    input_name="X")
    width = n_device_columns + len(lambda_names)
    if X.shape[1] != width:
        raise ValueError(
            f"optimizer rows must have {width} columns ({n_device_columns} device "
            f"columns, then {', '.join(lambda_names)}); got shape {X.shape}."
        )
    D, lam = X[:, :n_device_columns], X[:, n_device_columns:]
    if np.isinf(D).any():
        raise ValueError("device columns hold infinite values.")
    if not np.isfinite(lam).all() or (lam < 0).any():
        bad = lam[~np.isfinite(lam) | (lam < 0)][0]
        raise ValueError(f"objective weights λ must be finite and >= 0; got {bad!r}.")
    return D, lam


def check_lambdas(lam, lambda_range, *, who="the optimizer"):
    """Warn when a weight lies outside ``{0} ∪ lambda_range``, where a trained model extrapolates.

    Parameters
    ----------
    lam : ndarray of weights (any shape)
    lambda_range : (float, float)
        The range the model was trained on.
    who : str
        Named in the warning.

    Examples
    --------
    >>> import warnings
    >>> from skedge.optimize import check_lambdas
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     check_lambdas([0.0, 0.5, 10.0], (1e-3, 1.0))
    >>> print(w[0].message)  # doctest: +ELLIPSIS
    λ=10 lies outside the range [0.001, 1] the optimizer was trained on (and 0): ...
    """
    lo, hi = check_lambda_range(lambda_range)
    lam = np.asarray(lam, dtype=np.float64)
    tol = 1e-9
    outside = (lam != 0) & ((lam < lo * (1 - tol)) | (lam > hi * (1 + tol)))
    if outside.any():
        bad = lam[outside]
        worst = bad[np.argmax(np.abs(np.log(bad / np.sqrt(lo * hi))))]
        warnings.warn(
            f"λ={worst:.4g} lies outside the range [{lo:.4g}, {hi:.4g}] {who} was trained on "
            "(and 0): its designs there are extrapolations.",
            UserWarning, stacklevel=3,
        )
