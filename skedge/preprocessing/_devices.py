"""Device-side encoders (spec-sheet features, latency signatures, embeddings) and neighbours."""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context, clone
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .._checks import warn_far_outside
from ..devices import DEVICE_FEATURES, DEVICE_KINDS

__all__ = ["DeviceEmbedding", "DeviceFeatureEncoder", "DeviceSignatureEncoder", "nearest_devices"]


def _signed_log(x):
    """``sign(x) log1p(|x|)``: the scale of the non-kind device features."""
    return np.sign(x) * np.log1p(np.abs(x))


class DeviceFeatureEncoder(TransformerMixin, BaseEstimator):
    """Encode spec-sheet device features for a neural predictor.

    * the ``kind`` column (an index into :data:`skedge.devices.DEVICE_KINDS`)
      becomes a one-hot over all known kinds;
    * every other column is put on a signed log scale (``sign(x) log1p(|x|)``):
      peak GOP/s and bandwidth span four orders of magnitude across devices;
    * unknown values (NaN) are imputed with the training median and flagged by
      a missing-indicator column, so "unknown" is information, not a guess;
    * everything is standardized.

    ``transform`` warns (``OutOfRangeWarning``) when a known value lies more
    than 10x beyond the range of the devices seen in ``fit`` (on the log
    scale; beyond one range width without ``log``): the prediction is then an
    extrapolation, or the value is in the wrong unit.

    Parameters
    ----------
    kind_column : "auto", int or None, default="auto"
        Position of the ``kind`` column. ``"auto"``: column 0 when the input
        has exactly the :data:`~skedge.devices.DEVICE_FEATURES` columns.
    log : bool, default=True
        Apply the signed log to the non-kind columns.

    Attributes
    ----------
    feature_min_, feature_max_ : ndarray
        Range of each non-kind column over the training devices (NaN where
        no value was known).

    Examples
    --------
    >>> import numpy as np
    >>> from skedge.preprocessing import DeviceFeatureEncoder
    >>> D = np.array([[0, 1, 32, 80, 30, 4, 2.5, 2, 4, np.nan, 10, 2018],
    ...               [8, 1, 32, 11000, 480, 3584, 1.5, 3, 11, 250, 16, 2017]])
    >>> Z = DeviceFeatureEncoder().fit_transform(D)
    >>> Z.shape
    (2, 24)
    """

    _parameter_constraints = {
        "kind_column": [StrOptions({"auto"}), Interval(Integral, 0, None, closed="left"), None],
        "log": ["boolean"],
    }

    def __init__(self, *, kind_column="auto", log=True):
        self.kind_column = kind_column
        self.log = log

    def _kind_col(self):
        if self.kind_column == "auto":
            return 0 if self.n_features_in_ == len(DEVICE_FEATURES) else None
        if self.kind_column is not None and self.kind_column >= self.n_features_in_:
            raise ValueError(
                f"kind_column={self.kind_column} but X has {self.n_features_in_} columns."
            )
        return self.kind_column

    def _split(self, X):
        kc = self.kind_col_
        num = X if kc is None else np.delete(X, kc, axis=1)
        if self.log:
            num = _signed_log(num)
        if kc is None:
            return num, None
        kind = X[:, kc]
        known = np.isnan(kind) | np.isin(kind, np.arange(len(DEVICE_KINDS)))
        if not known.all():
            raise ValueError(
                f"device kind code {kind[~known][0]!r} is not an index into "
                f"DEVICE_KINDS (0..{len(DEVICE_KINDS) - 1})."
            )
        onehot = np.zeros((len(X), len(DEVICE_KINDS)))
        ok = ~np.isnan(kind)
        onehot[np.flatnonzero(ok), kind[ok].astype(int)] = 1.0
        return num, onehot

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn medians and scales of the training devices."""
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
        self.kind_col_ = self._kind_col()
        num, onehot = self._split(X)
        # keep_empty_features: a column unknown for every training device stays a
        # (constant) column, so widths never depend on which values were missing.
        self.imputer_ = SimpleImputer(
            strategy="median", add_indicator=True, keep_empty_features=True
        ).fit(num)
        raw = X if self.kind_col_ is None else np.delete(X, self.kind_col_, axis=1)
        known = ~np.isnan(raw)
        with np.errstate(invalid="ignore"):
            self.feature_min_ = np.where(known.any(axis=0), np.nanmin(
                np.where(known, raw, np.inf), axis=0), np.nan)
            self.feature_max_ = np.where(known.any(axis=0), np.nanmax(
                np.where(known, raw, -np.inf), axis=0), np.nan)
        parts = [self.imputer_.transform(num)] + ([onehot] if onehot is not None else [])
        self.scaler_ = StandardScaler().fit(np.hstack(parts))
        return self

    def transform(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite="allow-nan")
        num, onehot = self._split(X)
        self._warn_out_of_range(X)
        parts = [self.imputer_.transform(num)] + ([onehot] if onehot is not None else [])
        return self.scaler_.transform(np.hstack(parts))

    def _warn_out_of_range(self, X):
        """Warn when a known feature lies over 10x beyond the training devices' range."""
        if not hasattr(self, "feature_min_"):  # fitted before skedge kept the range
            return
        names = self._input_names()
        raw = X
        if self.kind_col_ is not None:
            raw = np.delete(X, self.kind_col_, axis=1)
            names.pop(self.kind_col_)
        if self.log:
            warn_far_outside(raw, self.feature_min_, self.feature_max_, np.log(10.0), names,
                             what="device feature", scale=_signed_log, stacklevel=5)
        else:
            warn_far_outside(raw, self.feature_min_, self.feature_max_,
                             self.feature_max_ - self.feature_min_, names,
                             what="device feature", stacklevel=5)

    def _input_names(self, input_features=None):
        if input_features is not None:
            return list(input_features)
        if hasattr(self, "feature_names_in_"):
            return list(self.feature_names_in_)
        if self.n_features_in_ == len(DEVICE_FEATURES):
            return list(DEVICE_FEATURES)
        return [f"x{i}" for i in range(self.n_features_in_)]

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self)
        names = self._input_names(input_features)
        if self.kind_col_ is not None:
            names.pop(self.kind_col_)
        out = list(self.imputer_.get_feature_names_out(names))
        if self.kind_col_ is not None:
            out += [f"kind={k}" for k in DEVICE_KINDS]
        return np.array(out, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


class DeviceSignatureEncoder(TransformerMixin, BaseEstimator):
    """Describe a device by its latencies on the space's reference designs.

    Input: one column per reference design, the device's measured latency
    (non-negative, e.g. ms; readings below 1e-6 are floored there before the log). Output: the log-latencies centred and scaled within
    the row (the *shape* of the device's response: which designs are relatively
    slow on it), followed by the row's mean of log-latency (its overall speed)
    and their spread, both standardized over the training devices.

    Parameters
    ----------
    with_speed : bool, default=True
        Output the mean log-latency. Without it the encoding does not change
        when every latency of a device is multiplied by one factor (readings
        above the floor): a model
        that predicts latencies *relative* to the signature's geometric mean
        (as :class:`~skedge.CrossDeviceRegressor`'s signature network does)
        then ranks a device faster than any it was trained on as it ranks a
        known device of the same shape, instead of extrapolating in speed.

    Examples
    --------
    >>> from skedge.preprocessing import DeviceSignatureEncoder
    >>> enc = DeviceSignatureEncoder().fit([[1.0, 2.0, 4.0], [10.0, 20.0, 80.0]])
    >>> enc.transform([[2.0, 4.0, 8.0]]).round(3).tolist()
    [[-1.225, 0.0, 1.225, -0.453, -1.0]]
    >>> enc.get_feature_names_out().tolist()
    ['sig0', 'sig1', 'sig2', 'sig_mean', 'sig_spread']
    >>> shape = DeviceSignatureEncoder(with_speed=False).fit([[1.0, 2.0, 4.0], [10.0, 20.0, 80.0]])
    >>> shape.transform([[2.0, 4.0, 8.0], [200.0, 400.0, 800.0]]).round(3).tolist()
    [[-1.225, 0.0, 1.225, -1.0], [-1.225, 0.0, 1.225, -1.0]]
    """

    _parameter_constraints = {"with_speed": ["boolean"]}
    _floor = 1e-6

    def __init__(self, *, with_speed=True):
        self.with_speed = with_speed

    def __setstate__(self, state):  # fitted before `with_speed` existed: it read the speed
        super().__setstate__({"with_speed": True, **state})

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        return tags

    def _encode(self, X):
        if np.any(X < 0):
            raise ValueError(
                "Negative values in data: device signatures are latencies on the reference "
                f"designs and cannot be negative; got minimum {X.min():.4g}."
            )
        # A zero reading (degenerate design, coarse timer) would be -inf on the log scale.
        L = np.log(np.maximum(X, self._floor))
        m = L.mean(axis=1, keepdims=True)
        s = L.std(axis=1, keepdims=True)
        z = (L - m) / np.where(s > 1e-12, s, 1.0)
        return z, np.hstack([m, s]) if self.with_speed else s

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn how to standardize the mean and spread columns over the training devices."""
        X = validate_data(self, X, dtype=np.float64)
        _, ms = self._encode(X)
        self.scaler_ = StandardScaler().fit(ms)
        return self

    def transform(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        z, ms = self._encode(X)
        return np.hstack([z, self.scaler_.transform(ms)])

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self)
        speed = ["sig_mean"] if self.with_speed else []
        return np.array(
            [f"sig{i}" for i in range(self.n_features_in_)] + speed + ["sig_spread"],
            dtype=object,
        )


class DeviceEmbedding(TransformerMixin, BaseEstimator):
    """Learned low-dimensional embedding of devices (PCA of encoded features).

    Fit it offline on a device table (one row per device setting); it then
    maps any device row, seen or not, to ``n_components`` coordinates.

    Parameters
    ----------
    n_components : int, default=4
    encoder : transformer, default=None
        Applied before the PCA; default :class:`DeviceFeatureEncoder`.

    Examples
    --------
    >>> import numpy as np
    >>> from skedge.preprocessing import DeviceEmbedding
    >>> D = np.random.RandomState(0).rand(10, 5)
    >>> DeviceEmbedding(n_components=2).fit(D).transform(D).shape
    (10, 2)
    """

    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "encoder": [HasMethods(["fit", "transform"]), None],
    }

    def __init__(self, *, n_components=4, encoder=None):
        self.n_components = n_components
        self.encoder = encoder

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
        self.encoder_ = clone(self.encoder) if self.encoder is not None else DeviceFeatureEncoder()
        Z = self.encoder_.fit_transform(X)
        k = min(self.n_components, Z.shape[1], Z.shape[0])
        self.pca_ = PCA(n_components=k).fit(Z)
        self.n_components_ = k
        return self

    def transform(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite="allow-nan")
        return self.pca_.transform(self.encoder_.transform(X))

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self)
        return np.array([f"deviceembedding{i}" for i in range(self.n_components_)], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


def nearest_devices(known, device, *, n_neighbors=3):
    """The known devices whose spec-sheet rows are closest to a device's.

    Rows are encoded as the predictors see them
    (:class:`~skedge.preprocessing.DeviceFeatureEncoder` fitted on ``known``:
    kind one-hot, signed log scale, median imputation with missing-value
    flags, standardization) and compared by Euclidean distance. Zero-shot, the
    latencies of a device's spec-sheet neighbours are a prior for its own:
    :class:`skedge.CrossDeviceRegressor` blends their average ranking
    with the spec network's.

    Parameters
    ----------
    known : pandas.DataFrame
        Feature rows of the known devices (columns :data:`DEVICE_FEATURES`),
        indexed by name.
    device : array-like of shape (12,) or pandas.Series
        The device's feature row (NaN where unknown).
    n_neighbors : int, default=3

    Returns
    -------
    names : list of str
        Up to ``n_neighbors`` names of ``known``, nearest first.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from skedge.devices import DEVICE_FEATURES
    >>> from skedge.preprocessing import nearest_devices
    >>> rows = {"big_gpu": [8, 1, 32, 1e4, 500, 3584, 1.5, 3, 11, 250, 16, 2017],
    ...         "phone": [0, 1, 32, 80, 30, 4, 2.5, 2, 4, np.nan, 10, 2018],
    ...         "cpu": [7, 1, 32, 700, 115, 10, 2.2, 14, np.nan, 85, 14, 2017]}
    >>> known = pd.DataFrame.from_dict(rows, orient="index", columns=DEVICE_FEATURES)
    >>> nearest_devices(known, [0, 1, 32, 75, 28, 4, 2.3, 2, 4, np.nan, 10, 2019], n_neighbors=2)
    ['phone', 'cpu']
    """
    if len(known) == 0:
        raise ValueError("no known devices to compare with.")
    table = known.loc[:, list(DEVICE_FEATURES)].to_numpy(np.float64)
    row = np.asarray(device, dtype=np.float64).reshape(1, -1)
    if row.shape[1] != len(DEVICE_FEATURES):
        raise ValueError(
            f"the device row has {row.shape[1]} values; expected {len(DEVICE_FEATURES)} "
            f"({', '.join(DEVICE_FEATURES)})."
        )
    encoder = DeviceFeatureEncoder().fit(table)
    dist = np.linalg.norm(encoder.transform(table) - encoder.transform(row), axis=1)
    order = np.argsort(dist, kind="stable")[:n_neighbors]
    return [str(known.index[i]) for i in order]
