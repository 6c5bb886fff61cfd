"""Few-shot adaptation of a cross-device predictor to one new device.

Zero-shot, a fitted performance pipeline predicts a new device from its
feature row alone. With a few measured designs on that device (k = 10: the
space's reference designs), two cheap steps improve it without retraining:

1. describe the device by its signature (the measured reference latencies; a
   pipeline built with ``make_performance_pipeline(space, n_signature=10)``);
2. correct the remaining per-device bias with :class:`FewShotAdapter`: an
   affine map in log space, ``log y = a + b log f(x)``, fitted on the k
   measurements and shrunk towards the identity. It leaves the ranking of
   designs untouched (for b > 0) and fixes the scale, which is what
   "within ±10 %" needs.
"""

from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["FewShotAdapter", "fit_log_affine"]


def fit_log_affine(pred, y, *, shrinkage=1.0):
    """Fit ``log y = a + b log pred`` by ridge regression shrunk towards a=0, b=1.

    Parameters
    ----------
    pred, y : array-like of positive floats
        Predictions and measurements on the same designs.
    shrinkage : float, default=1.0
        Ridge strength on ``b - 1`` in units of the number of shots: 0 is plain
        least squares; large values keep the slope at 1 (offset only). With a
        single shot only the offset is fitted.

    Returns
    -------
    a, b : float

    Examples
    --------
    >>> import numpy as np
    >>> from skedge.fewshot import fit_log_affine
    >>> p = np.array([1.0, 2.0, 4.0, 8.0]); y = 3.0 * p
    >>> [round(v, 6) for v in fit_log_affine(p, y)]
    [1.098612, 1.0]
    """
    lp = np.log(np.maximum(np.asarray(pred, dtype=np.float64), 1e-12))
    ly = np.log(np.maximum(np.asarray(y, dtype=np.float64), 1e-12))
    if len(lp) == 0:
        return 0.0, 1.0
    mp, my = lp.mean(), ly.mean()
    if len(lp) < 2 or not np.isfinite(shrinkage):
        return float(my - mp), 1.0
    cp, cy = lp - mp, ly - my
    # Ridge on (b - 1): minimize |cy - b cp|^2 + shrinkage * k * (b - 1)^2.
    lam = shrinkage * len(lp) * cp.var()
    b = (cp @ cy + lam) / (cp @ cp + lam) if (cp @ cp + lam) > 0 else 1.0
    return float(my - b * mp), float(b)


class FewShotAdapter(RegressorMixin, BaseEstimator):
    """Adapt a fitted latency/energy predictor to one device from k measurements.

    Parameters
    ----------
    estimator : fitted regressor or Pipeline
        The cross-device predictor; it is used as it is (never refitted).
    correction : {"affine", "offset", "none"}, default="affine"
        ``"affine"``: ``log y = a + b log f(x)``; ``"offset"``: ``b = 1``.
    shrinkage : float, default=1.0
        Pull of the slope towards 1 (see :func:`fit_log_affine`).

    Attributes
    ----------
    intercept_, slope_ : float
        The fitted log-space correction.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from skedge import DevicePerformanceRegressor
    >>> from skedge.fewshot import FewShotAdapter
    >>> rng = np.random.RandomState(0); X = rng.rand(300, 3); y = np.exp(X.sum(1))
    >>> base = DevicePerformanceRegressor(hidden_layer_sizes=(16,), max_epochs=30,
    ...                                   random_state=0).fit(X, y)
    >>> new_device = FewShotAdapter(base).fit(X[:10], 2.0 * y[:10])  # twice as slow
    >>> bool(np.median(new_device.predict(X) / base.predict(X)) > 1.8)
    True
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["predict"])],
        "correction": [StrOptions({"affine", "offset", "none"})],
        "shrinkage": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, estimator, *, correction="affine", shrinkage=1.0):
        self.estimator = estimator
        self.correction = correction
        self.shrinkage = shrinkage

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y):
        """Fit the correction on the device's k measured pair rows ``X`` and targets ``y``."""
        check_is_fitted(self.estimator)
        X, y = validate_data(
            self, X, y, dtype=np.float64, ensure_all_finite="allow-nan", y_numeric=True
        )
        if np.any(y <= 0):
            raise ValueError("few-shot measurements must be positive latencies/energies.")
        pred = self.estimator.predict(X)
        if self.correction == "none":
            self.intercept_, self.slope_ = 0.0, 1.0
        elif self.correction == "offset":
            self.intercept_, self.slope_ = fit_log_affine(pred, y, shrinkage=np.inf)
        else:
            self.intercept_, self.slope_ = fit_log_affine(pred, y, shrinkage=self.shrinkage)
        return self

    def predict(self, X):
        """Corrected predictions for pair rows of the adapted device."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite="allow-nan")
        pred = np.maximum(self.estimator.predict(X), 1e-12)
        return np.exp(self.intercept_ + self.slope_ * np.log(pred))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags
