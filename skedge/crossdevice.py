"""One estimator that predicts latency or energy of any design on any device.

:class:`CrossDeviceRegressor` owns everything a new device needs: the trained
networks, the table of known devices (their feature rows and measurements)
and the adaptation (:class:`~skedge.adaptation.AdaptedDevice`). Fit it once on
the devices you measured; then

* ``model.adapt(features)`` serves a device from its spec-sheet row alone
  (zero-shot);
* ``model.adapt(features, designs, y)`` serves it from any number of measured
  designs (few-shot), the reference designs included or not;
* ``model.add_device(name, features, designs, y)`` makes a newly measured
  device a known one, without refitting the networks: later adaptations mix
  and match it like the others.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._known_table import KnownDeviceTable, feature_row, signature_speed, spec_range, unique_rows
from .adaptation import AdaptedDevice
from .devices import DEVICE_FEATURES
from .pipelines import make_performance_pipeline
from .preprocessing import DesignOneHotEncoder
from .spaces import DesignSpace, get_space

__all__ = ["CrossDeviceRegressor"]

_N_FEATURES = len(DEVICE_FEATURES)
# Parameters added after a release, valued as a model saved before them behaves.
_ADDED_PARAMS = {"shot_head": "offset", "zero_shot_blend": True, "part_weights": "fixed"}


class CrossDeviceRegressor(KnownDeviceTable, RegressorMixin, BaseEstimator):
    """Latency (or energy) of any design on any device, known or new.

    Fitted on pair rows ``[design | device features]`` with the device name
    of each row (``X, y, groups = skedge.datasets.to_pairs(bench)``), it
    trains two networks and keeps the known devices' measurements:

    * a *spec network*, ``(design, device features) -> latency``, for devices
      known only by their spec-sheet row (see ``spec_range_``);
    * a *signature network*, ``(design, latencies on the reference designs)
      -> latency``, trained on the known devices and on synthetic devices
      mixed from pairs of them (device mixup). It reads the signature's shape
      (latencies over their geometric mean) and predicts relative to that
      mean, so a device faster than every known one is not extrapolated.

    :meth:`adapt` turns a new device into an
    :class:`~skedge.adaptation.AdaptedDevice`: the network's prediction
    blended with the known devices (mixed to fit the shots, and matched to the
    predicted profile), plus a ridge residual head fitted on the shots whose
    strength a small-sample information criterion (AICc) chooses, so many
    measurements move the ranking, not only the scale. With
    ``zero_shot_blend=True`` and a spec-sheet row, the zero-shot prediction is
    blended in, weighted by how well each prediction fits the shots it did
    not see. :meth:`predict` on pair rows is zero-shot: each distinct device
    row is adapted from its features.

    Parameters
    ----------
    space : DesignSpace or str, default="nb201"
        The design space of the design columns.
    reference_designs : array-like of shape (n_references, n_choices), default=None
        The signature designs (e.g. ``bench.designs[bench.reference_idx]``).
        Every training device must have them measured. None: ``n_references``
        designs measured on every training device, spread over the MACs range.
    n_references : int, default=10
        Number of signature designs chosen when ``reference_designs`` is None.
    zero_shot : bool, default=True
        Train the spec network (needed to adapt a device without shots).
    hidden_layer_sizes : tuple of int, default=(128, 128, 128)
    max_epochs : int, default=6
        Epochs over every measured (design, device) pair.
    batch_size : int, default=1024
    learning_rate : float, default=2e-3
    weight_decay : float, default=1e-4
    n_estimators : int, default=2
        Members of each network's ensemble.
    n_mix : int, default=None
        Mixup devices (default: as many as known devices).
    n_train_designs : int, default=None
        Designs per known device the networks train on (a random subset plus
        the reference designs; mixup devices get half as many). None: every
        measured design. The known-device table always keeps every
        measurement.
    blend : float, default=2/3
        Weight of the known devices against the network (0: networks only)
        without shots, and with shots where ``part_weights="fixed"``.
    part_weights : {"cv", "fixed"}, default="cv"
        How the few-shot prediction weighs its three parts (the signature
        network, the known devices mixed to fit the shots, the known devices
        matched to the predicted profile): ``"cv"``, from three shots on, by
        the inverse of each part's error variance on shots it did not see
        (``AdaptedDevice.part_weights_``), so a device unlike the known ones,
        where the network extrapolates, leans on the measured devices;
        ``"fixed"``, by ``blend``.
    profile_temperature : float, default=100.0
        Sharpness of the profile match (:func:`~skedge.fewshot.profile_mix`).
    shot_head : {"ridge", "offset"}, default="ridge"
        How the shots correct the prediction: ``"ridge"``, a ridge head on the
        design's one-hot encoding and log MACs whose strength AICc chooses
        over the shots (offset-only when they are too few to pay for more
        degrees of freedom); ``"offset"``, a log-scale offset only.
    zero_shot_blend : bool, default=False
        While the shots miss some reference design (and the device has a
        spec-sheet row), average the zero-shot prediction with the few-shot
        one in log space, by inverse-variance weights measured on the shots
        (``AdaptedDevice.shot_weight_``). A handful of shots then ranks a
        device below its spec sheet alone less often, but the gains do not
        hold on every held-out split and the mean falls at 20 shots, so it is
        off by default (docs: benchmarks, "Shots that miss the reference designs").
    random_state : int, RandomState instance or None, default=None
    n_threads : int, default=None
        Torch threads while fitting and predicting (None: torch's setting).
    verbose : int, default=0

    Attributes
    ----------
    space_ : DesignSpace
    device_names_ : list of str
        The known devices, in the order of ``known_log_``'s columns.
    device_features_ : ndarray of shape (n_known, n_device_features)
    grid_designs_ : ndarray of shape (n_grid, n_choices)
        Every design measured on some known device.
    measured_log_ : ndarray of shape (n_grid, n_known)
        Log latencies as measured (floored at each device's 1st percentile;
        NaN where not measured).
    known_log_ : ndarray of shape (n_grid, n_known)
        ``measured_log_`` with the gaps filled by the signature network.
    reference_designs_ : ndarray of shape (n_references, n_choices)
    spec_range_ : ndarray of shape (2, n_device_features) or None
        Range of each spec-sheet feature over the spec network's training
        devices (NaN: ``kind``, or unknown). The spec network ranks designs from
        a row clamped into it, not extrapolated; the speed follows the row.
    zero_shot_net_, signature_net_ : Pipeline or None
        The fitted networks. The signature network reads a signature's shape
        (its encoder drops the speed) and predicts latency over the
        signature's geometric mean (``KnownDeviceTable._signature_log`` puts
        the scale back).

    Examples
    --------
    >>> import numpy as np
    >>> from skedge.crossdevice import CrossDeviceRegressor
    >>> from skedge.datasets import make_edge_benchmark, to_pairs
    >>> bench = make_edge_benchmark("nb201", n_designs=300, n_devices=8, random_state=0)
    >>> X, y, groups = to_pairs(bench, devices=bench.latency.columns[:7])
    >>> model = CrossDeviceRegressor(space="nb201", max_epochs=3, random_state=0)
    >>> model = model.fit(X, y, groups=groups)
    >>> new = bench.latency.columns[7]
    >>> shots = bench.reference_idx
    >>> device = model.adapt(bench.devices.loc[new], bench.designs[shots],
    ...                      bench.latency[new].to_numpy()[shots], name=new)
    >>> y_pred, y_std = device.predict(bench.designs, return_std=True)
    >>> y_pred.shape, bool((y_std > 0).all())
    ((300,), True)
    """

    _parameter_constraints = {
        "space": [DesignSpace, str],
        "reference_designs": ["array-like", None],
        "n_references": [Interval(Integral, 2, None, closed="left")],
        "zero_shot": ["boolean"],
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "n_mix": [Interval(Integral, 0, None, closed="left"), None],
        "n_train_designs": [Interval(Integral, 1, None, closed="left"), None],
        "blend": [Interval(Real, 0, 1, closed="both")],
        "part_weights": [StrOptions({"cv", "fixed"})],
        "profile_temperature": [Interval(Real, 0, None, closed="left")],
        "shot_head": [StrOptions({"ridge", "offset"})],
        "zero_shot_blend": ["boolean"],
        "random_state": ["random_state"],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        space="nb201",
        reference_designs=None,
        n_references=10,
        zero_shot=True,
        hidden_layer_sizes=(128, 128, 128),
        max_epochs=6,
        batch_size=1024,
        learning_rate=2e-3,
        weight_decay=1e-4,
        n_estimators=2,
        n_mix=None,
        n_train_designs=None,
        blend=2 / 3,
        part_weights="cv",
        profile_temperature=100.0,
        shot_head="ridge",
        zero_shot_blend=False,
        random_state=None,
        n_threads=None,
        verbose=0,
    ):
        self.space = space
        self.reference_designs = reference_designs
        self.n_references = n_references
        self.zero_shot = zero_shot
        self.hidden_layer_sizes = hidden_layer_sizes
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.n_estimators = n_estimators
        self.n_mix = n_mix
        self.n_train_designs = n_train_designs
        self.blend = blend
        self.part_weights = part_weights
        self.profile_temperature = profile_temperature
        self.shot_head = shot_head
        self.zero_shot_blend = zero_shot_blend
        self.random_state = random_state
        self.n_threads = n_threads
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, groups=None):
        """Fit the networks and store the known devices.

        Parameters
        ----------
        X : array-like of shape (n_pairs, n_choices + 12)
            Pair rows ``[design option indices | device features]``
            (:func:`skedge.datasets.to_pairs` without ``signature``).
        y : array-like of shape (n_pairs,)
            Latency (ms) or energy (mJ), non-negative.
        groups : array-like of shape (n_pairs,)
            The device name of each row. Rows of one device must share one
            feature row.

        Returns
        -------
        self : CrossDeviceRegressor
        """
        space = get_space(self.space)
        X, y = validate_data(self, X, y, dtype=np.float64, ensure_all_finite="allow-nan",
                             y_numeric=True)
        n = space.n_choices
        if X.shape[1] != n + _N_FEATURES:
            raise ValueError(
                f"X must hold {n} design columns of {space!r} followed by the "
                f"{_N_FEATURES} device features ({', '.join(DEVICE_FEATURES)}); got "
                f"{X.shape[1]} columns. Build it with skedge.datasets.to_pairs(bench) "
                "(without `signature`)."
            )
        if groups is None:
            raise ValueError("CrossDeviceRegressor.fit needs `groups`: the device name of "
                             "each row (to_pairs returns it).")
        groups = np.asarray(groups, dtype=object).astype(str)
        if len(groups) != len(y):
            raise ValueError(f"groups has {len(groups)} entries; X has {len(y)} rows.")
        if not np.isfinite(y).all() or (y < 0).any():
            raise ValueError("y must hold finite, non-negative latencies or energies; "
                             f"its minimum is {np.nanmin(y):.4g}.")
        designs = space.validate(X[:, :n], canonicalize=True)
        self.space_ = space
        names = list(dict.fromkeys(groups))
        if len(names) < 2:
            raise ValueError(f"CrossDeviceRegressor needs at least 2 known devices; got {names}.")
        self._store_known(designs, X[:, n:], y, groups, names)
        self._fit_networks(designs, X[:, n:], groups)
        return self

    def _seeds(self):
        if isinstance(self.random_state, Integral):
            seed = int(self.random_state)
        else:
            seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        return seed, np.random.RandomState(seed)

    def _net_params(self, seed):
        return dict(
            hidden_layer_sizes=self.hidden_layer_sizes, max_epochs=self.max_epochs,
            batch_size=self.batch_size, learning_rate=self.learning_rate,
            weight_decay=self.weight_decay, n_estimators=self.n_estimators,
            random_state=seed, n_threads=self.n_threads, verbose=max(0, int(self.verbose) - 1),
        )

    def _fit_networks(self, designs, feats, groups):
        seed, rng = self._seeds()
        pos, cols = self._rows
        del self._rows
        L = self.measured_log_
        ref_at = self._positions(self.reference_designs_)
        signatures = np.exp(L[ref_at]).T  # (n_known, n_references)
        if self.n_train_designs is not None:
            keep = np.zeros(len(pos), dtype=bool)
            for j in range(L.shape[1]):
                rows = np.flatnonzero(cols == j)
                size = min(self.n_train_designs, len(rows))
                keep[rng.choice(rows, size=size, replace=False)] = True
                keep[rows[np.isin(pos[rows], ref_at)]] = True
            designs, feats, pos, cols = designs[keep], feats[keep], pos[keep], cols[keep]
        y_log = L[pos, cols]
        self.zero_shot_net_ = self.spec_range_ = None
        if self.zero_shot:
            if self.verbose:
                print(f"[CrossDeviceRegressor] spec network: {len(pos)} rows")
            self.zero_shot_net_ = make_performance_pipeline(
                self.space_, **self._net_params(seed)).fit(
                np.hstack([designs, feats]), np.exp(y_log))
            self.spec_range_ = spec_range(self.zero_shot_net_)
        # Signature rows: every measured pair with its device's signature, then
        # mixup devices (convex mixtures of two known devices in log space).
        Xs, ys = [np.hstack([designs, signatures[cols]])], [y_log]
        full = [j for j in range(L.shape[1]) if np.isfinite(L[:, j]).all()]
        pool = full if len(full) >= 2 else list(range(L.shape[1]))
        n_mix = L.shape[1] if self.n_mix is None else self.n_mix
        for _ in range(n_mix if len(pool) >= 2 else 0):
            a, b = rng.choice(len(pool), size=2, replace=False)
            w = rng.uniform(0.2, 0.8)
            col = w * L[:, pool[a]] + (1 - w) * L[:, pool[b]]
            ok = np.flatnonzero(np.isfinite(col))
            size = len(ok) // 2 if self.n_train_designs is None else \
                min(self.n_train_designs // 2, len(ok))
            rows = rng.choice(ok, size=size, replace=False)
            Xs.append(np.hstack([self.grid_designs_[rows],
                                 np.tile(np.exp(col[ref_at]), (len(rows), 1))]))
            ys.append(col[rows])
        Xs = np.vstack(Xs)
        if self.verbose:
            print(f"[CrossDeviceRegressor] signature network: {len(Xs)} rows")
        n = self.space_.n_choices
        # The shape in, latencies relative to the speed out (KnownDeviceTable._signature_speed).
        self.signature_net_ = make_performance_pipeline(
            self.space_, device_features=False, n_signature=len(ref_at),
            **self._net_params(seed)).set_params(features__signature__with_speed=False).fit(
            np.hstack([Xs[:, :n], np.zeros((len(Xs), _N_FEATURES)), Xs[:, n:]]),
            np.exp(np.concatenate(ys) - signature_speed(Xs[:, n:])))
        self._fill_known()

    def _fill_known(self):
        """Fill the known devices' unmeasured designs with the signature network."""
        L = self.measured_log_.copy()
        ref_at = self._positions(self.reference_designs_)
        for j in np.flatnonzero(~np.isfinite(L).all(axis=0)):
            gap = ~np.isfinite(L[:, j])
            L[gap, j] = self._signature_log(self.grid_designs_[gap], np.exp(L[ref_at, j]))
        self.known_log_ = L
        self._known_stats()
        self.design_encoder_ = DesignOneHotEncoder(space=self.space_).fit(self.grid_designs_[:1])
        log_macs = np.log(np.maximum(self.space_.macs(self.grid_designs_), 1e-12))
        self.log_macs_stats_ = (float(log_macs.mean()), float(log_macs.std()) or 1.0)

    def adapt(self, device_features=None, designs=None, y=None, *, name=None):
        """A fitted regressor over designs for one device, from its spec row and/or shots.

        Parameters
        ----------
        device_features : array-like of shape (12,), pandas.Series or dict, default=None
            The device's feature row (:data:`~skedge.devices.DEVICE_FEATURES`;
            NaN where unknown). Required without shots.
        designs : array-like of shape (n_shots, n_choices), default=None
            Designs measured on the device: any designs of the space, the
            reference designs included or not.
        y : array-like of shape (n_shots,), default=None
            Their measured latencies (or energies), positive.
        name : str, default=None

        Returns
        -------
        device : AdaptedDevice
            ``device.predict(designs, return_std=False)``.
        """
        check_is_fitted(self)
        features = feature_row(device_features)
        if (designs is None) != (y is None):
            raise ValueError("give both `designs` and `y` (the measured shots), or neither.")
        if designs is not None:
            designs = self._check_designs(designs)
            y = np.asarray(y, dtype=np.float64).reshape(-1)
            if len(y) != len(designs):
                raise ValueError(f"{len(designs)} designs but {len(y)} measurements in y.")
            bad = ~np.isfinite(y) | (y <= 0)
            if bad.any():
                raise ValueError(f"measured latencies must be positive and finite; shot "
                                 f"{int(np.argmax(bad))} reads {y[bad][0]!r}.")
            if len(y) == 0:
                designs = y = None
        if y is None:
            if self.zero_shot_net_ is None:
                raise ValueError("this model was fitted with zero_shot=False: adapting a device "
                                 "needs measured designs (designs, y), or refit with "
                                 "zero_shot=True.")
            if np.isnan(features).all():
                raise ValueError("adapting a device without shots needs its feature row "
                                 f"({', '.join(DEVICE_FEATURES)}); all values are missing.")
        return AdaptedDevice(self, name=name)._fit(features, designs, y)

    def add_device(self, name, device_features, designs, y, *, replace=False):
        """Make a measured device a known one, without refitting the networks.

        Its measurements join the table of known devices (its unmeasured
        designs filled by its own adapted prediction), so later adaptations
        mix and match it like the others.

        Parameters
        ----------
        name : str
        device_features : array-like of shape (12,), pandas.Series or dict
        designs : array-like of shape (n_shots, n_choices)
        y : array-like of shape (n_shots,)
        replace : bool, default=False
            Replace the measurements of a device that is already known.

        Returns
        -------
        self : CrossDeviceRegressor
        """
        check_is_fitted(self)
        name = str(name)
        if name in self.device_names_ and not replace:
            raise ValueError(f"device {name!r} is already known; pass replace=True to replace "
                             "its measurements.")
        if replace and name not in self.device_names_:
            raise ValueError(f"no known device {name!r} to replace; known devices: "
                             f"{self.device_names_}.")
        device = self.adapt(device_features, designs, y, name=name)
        designs = self._check_designs(designs)
        new = designs[self._positions(designs) < 0]
        if len(new):
            new, _ = unique_rows(new)
            self._extend_grid(new)
        column = np.log(device.predict(self.grid_designs_))
        measured = np.full(len(self.grid_designs_), np.nan)
        at = self._positions(designs)
        measured[at] = np.log(np.asarray(y, dtype=np.float64))
        column = np.where(np.isnan(measured), column, measured)
        if replace:
            j = self.device_names_.index(name)
            self.measured_log_[:, j], self.known_log_[:, j] = measured, column
            self.device_features_[j] = device.features_
        else:
            self.device_names_ = [*self.device_names_, name]
            self.measured_log_ = np.column_stack([self.measured_log_, measured])
            self.known_log_ = np.column_stack([self.known_log_, column])
            self.device_features_ = np.vstack([self.device_features_, device.features_])
        self._known_stats()
        return self

    def predict(self, X, return_std=False):
        """Zero-shot predictions for pair rows ``[design | device features]``.

        Each distinct device row is adapted from its features alone; use
        :meth:`adapt` with measured designs for a few-shot prediction.

        Parameters
        ----------
        X : array-like of shape (n_pairs, n_choices + 12)
        return_std : bool, default=False

        Returns
        -------
        y_pred : ndarray of shape (n_pairs,)
        y_std : ndarray of shape (n_pairs,)
            Only with ``return_std=True``.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite="allow-nan")
        n = self.space_.n_choices
        rows, inverse = unique_rows(np.nan_to_num(X[:, n:], nan=np.inf), int_rows=False)
        y, std = np.empty(len(X)), np.empty(len(X))
        for i in range(len(rows)):
            mask = inverse == i
            device = self.adapt(X[np.argmax(mask), n:])
            y[mask], std[mask] = device.predict(X[mask, :n], return_std=True)
        return (y, std) if return_std else y

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_pos_of", None)  # a lookup rebuilt on demand
        return state

    def __setstate__(self, state):  # an older file loads, clones and adapts as it did
        super().__setstate__({**_ADDED_PARAMS, **state})

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.target_tags.positive_only = True
        return tags
