"""The table of known devices behind :class:`~skedge.crossdevice.CrossDeviceRegressor`.

:class:`KnownDeviceTable` holds what the estimator reads per design: the known
devices' log latencies on the design grid (measured, or filled by the
signature network), lookups of designs on that grid, the networks'
predictions for one device, the shot head's design features, and the
device's signature built from its shots. The estimator's public API (fit,
adapt, add_device, predict) lives in :mod:`skedge.crossdevice`.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from ._checks import OutOfRangeWarning
from .devices import DEVICE_FEATURES, validate_device_table
from .fewshot import KnownDeviceMix
from .preprocessing import DeviceSignatureEncoder, nearest_devices

__all__ = ["KnownDeviceTable", "feature_row", "signature_speed", "spec_range", "unique_rows"]

_N_FEATURES = len(DEVICE_FEATURES)


def signature_speed(signatures):
    """The log of the signatures' geometric mean (last axis: the reference designs)."""
    # The encoder's floor: a zero reading would make the speed -inf.
    return np.log(np.maximum(signatures, DeviceSignatureEncoder._floor)).mean(axis=-1)


def spec_range(spec_net):
    """Range of each spec-sheet column over a fitted spec network's training devices.

    Read from its :class:`~skedge.preprocessing.DeviceFeatureEncoder`, which
    records it to warn about rows far outside; NaN where no value was known,
    and for ``kind``: a category has no range.
    """
    device = spec_net.named_steps["features"].named_transformers_["device"]
    bounds = np.vstack([device.feature_min_, device.feature_max_])
    return np.insert(bounds, device.kind_col_, np.nan, axis=1)


class KnownDeviceTable:
    """The known-device table of :class:`~skedge.crossdevice.CrossDeviceRegressor` and its reads."""

    def _store_known(self, designs, feats, y, groups, names):
        grid, pos = unique_rows(designs)
        table = np.full((len(grid), len(names)), np.nan)
        col = {nm: j for j, nm in enumerate(names)}
        cols = np.array([col[g] for g in groups])
        table[pos, cols] = y
        features = np.empty((len(names), _N_FEATURES))
        for j, nm in enumerate(names):
            rows = feats[cols == j]
            same = np.all((rows == rows[0]) | (np.isnan(rows) & np.isnan(rows[0])), axis=1)
            if not same.all():
                raise ValueError(f"device {nm!r} has more than one feature row in X.")
            features[j] = rows[0]
        # Degenerate designs read ~0 ms on some devices: floor every device at
        # its own 1st percentile before any log.
        floor = np.nanquantile(table, 0.01, axis=0)
        positive = np.where(table > 0, table, np.inf).min(axis=0)
        floor = np.where(floor > 0, floor, positive)
        if not np.isfinite(floor).all():
            raise ValueError(f"device {names[int(np.argmin(np.isfinite(floor)))]!r} has no "
                             "positive measurement.")
        self.device_names_ = names
        self.device_features_ = features
        self.grid_designs_ = grid
        self.measured_log_ = np.log(np.maximum(table, floor))  # NaN stays NaN
        self.reference_designs_ = self._references(grid, table)
        self._pos_of = None
        self._rows = (pos, cols)

    def _known_stats(self):
        """Per known device, the mean and spread of its log latencies over the grid."""
        std = self.known_log_.std(axis=0)
        self.known_log_mean_ = self.known_log_.mean(axis=0)
        self.known_log_std_ = np.where(std > 1e-12, std, 1.0)

    def _references(self, grid, table):
        everywhere = np.isfinite(table).all(axis=1)
        if self.reference_designs is not None:
            refs = self.space_.validate(self.reference_designs, canonicalize=True)
            at = self._positions(refs, grid)
            missing = [i for i, p in enumerate(at) if p < 0 or not everywhere[p]]
            if missing:
                raise ValueError(
                    f"reference design {missing[0]} ({self.space_.to_string(refs[missing[0]])}) "
                    "is not measured on every known device."
                )
            return refs
        pool = np.flatnonzero(everywhere)
        if len(pool) < self.n_references:
            raise ValueError(f"fewer than {self.n_references} designs are measured on every "
                             "known device; pass reference_designs or lower n_references.")
        order = pool[np.argsort(self.space_.macs(grid[pool]), kind="stable")]
        picks = np.linspace(0, len(order) - 1, self.n_references + 2)[1:-1].round().astype(int)
        return grid[order[picks]]

    def _positions(self, designs, grid=None):
        """Row of each design in ``grid`` (default: the model's grid); -1 where absent."""
        if grid is None:
            if getattr(self, "_pos_of", None) is None:
                self._pos_of = {r.tobytes(): i for i, r in enumerate(self.grid_designs_)}
            lookup = self._pos_of
        else:
            lookup = {r.tobytes(): i for i, r in enumerate(np.asarray(grid, dtype=np.int64))}
        designs = np.asarray(designs, dtype=np.int64)
        return np.array([lookup.get(r.tobytes(), -1) for r in designs], dtype=np.int64)

    def _check_designs(self, designs):
        check_is_fitted(self)
        return self.space_.validate(designs, canonicalize=True)

    def _known_log(self, designs):
        """Known devices' log latencies on designs: measured, or predicted off the grid."""
        at = self._positions(designs)
        out = np.empty((len(designs), self.known_log_.shape[1]))
        found = at >= 0
        out[found] = self.known_log_[at[found]]
        if not found.all():
            ref_at = self._positions(self.reference_designs_)
            for j in range(out.shape[1]):
                out[~found, j] = self._signature_log(designs[~found],
                                                     np.exp(self.known_log_[ref_at, j]))
        return out

    def _zero_log(self, designs, features, speed=0.0):
        """The spec network's log latencies, the row clamped into its training range.

        A network of ReLU units continues linearly past the devices it was
        trained on: which designs are relatively slow is read at the edge of
        the known range (clamped row), and the device's speed, the log offset
        ``_zero_speed`` measures, is added back.
        """
        return self._spec_log(designs, self._clamped(features)) + speed

    def _zero_speed(self, features, clamped_log):
        """Mean log latency over the grid, the row as given minus the row clamped.

        ``clamped_log`` is ``_zero_log(grid_designs_, features)``, which the
        caller has already computed.
        """
        if np.array_equal(self._clamped(features), features, equal_nan=True):
            return 0.0
        return float(np.mean(self._spec_log(self.grid_designs_, features)) - np.mean(clamped_log))

    def _clamped(self, features):
        bounds = getattr(self, "spec_range_", None)  # None: fitted before the clamp
        if bounds is None:
            return features
        low, high = np.where(np.isnan(bounds), [[-np.inf], [np.inf]], bounds)
        return np.clip(features, low, high)  # NaN (unknown) stays NaN

    def _spec_log(self, designs, features):
        rows = np.hstack([designs, np.tile(features, (len(designs), 1))])
        with _quiet_encoded_range():
            return np.log(self.zero_shot_net_.predict(rows))

    def _extend_grid(self, new):
        """Add designs to the grid: unmeasured on every known device, filled by prediction."""
        filled = self._known_log(new)
        self.grid_designs_ = np.vstack([self.grid_designs_, new])
        self.measured_log_ = np.vstack([self.measured_log_,
                                        np.full((len(new), self.measured_log_.shape[1]), np.nan)])
        self.known_log_ = np.vstack([self.known_log_, filled])
        self._pos_of = None

    def _signature_log(self, designs, signature):
        rows = np.hstack([designs, np.zeros((len(designs), _N_FEATURES)),
                          np.tile(signature, (len(designs), 1))])
        with _quiet_encoded_range():
            return np.log(self.signature_net_.predict(rows)) + self._signature_speed(signature)

    def _signature_speed(self, signatures):
        """What the signature network's log output is relative to: the device's speed.

        The signature network reads the shape of a signature (its encoder,
        ``with_speed=False``, does not change when every latency is multiplied
        by one factor) and predicts latencies relative to its geometric mean:
        a device faster than any known one (a new datacenter GPU) is ranked
        like the known devices of its shape, not by extrapolating in speed. A
        network fitted before this (its encoder reads the speed) predicts
        latencies as they are: 0.
        """
        encoder = self.signature_net_.named_steps["features"].named_transformers_["signature"]
        if encoder.with_speed:
            return np.zeros(np.shape(signatures)[:-1])
        return signature_speed(signatures)

    def _head_features(self, designs):
        mean, std = self.log_macs_stats_
        log_macs = np.log(np.maximum(self.space_.macs(designs), 1e-12))
        scaled = ((log_macs - mean) / std)[:, None]
        return np.hstack([self.design_encoder_.transform(designs), scaled])

    def _nearest_known(self, features):
        table = pd.DataFrame(self.device_features_, index=self.device_names_,
                             columns=list(DEVICE_FEATURES))
        near = nearest_devices(table, features)
        return [self.device_names_.index(n) for n in near]

    def _shot_signature(self, features, designs, y):
        """The device's latencies on the reference designs: measured, else imputed."""
        refs = self.reference_designs_
        at = self._positions(refs, designs)
        logy = np.log(y)
        sig = np.full(len(refs), np.nan)
        for i, p in enumerate(at):
            if p >= 0:
                same = np.all(designs == refs[i], axis=1)
                sig[i] = logy[same].mean()
        missing = np.isnan(sig)
        if missing.any():
            sig[missing] = self._impute(features, designs, logy, refs[missing])
        return np.exp(sig)

    def _impute(self, features, designs, logy, targets):
        """Log latencies of unmeasured designs from the shots (for the signature)."""
        if len(logy) >= 3:
            # Known devices weighted by their correlation with the shots: no free
            # weights to fit, so a handful of shots cannot overfit it.
            mix = KnownDeviceMix(method="kernel").fit(np.exp(self._known_log(designs)),
                                                      np.exp(logy))
            return np.log(mix.predict(np.exp(self._known_log(targets))))
        if self.zero_shot_net_ is not None and not np.isnan(features).all():
            base, at_shots = self._zero_log(targets, features), self._zero_log(designs, features)
        else:
            base = self._known_log(targets).mean(axis=1)
            at_shots = self._known_log(designs).mean(axis=1)
        return base + (logy - at_shots).mean()


@contextlib.contextmanager
def _quiet_encoded_range():
    """Silence the networks' range warnings about *encoded* columns (``x31``, ...).

    They name nothing a user can act on; a device unlike the known ones shows
    in the adapted device's uncertainty instead. Warnings about the device's own
    feature row (which name the field) still reach the user.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"DevicePerformanceRegressor: feature x\d+",
                                category=OutOfRangeWarning)
        yield


def unique_rows(rows, int_rows=True):
    """Distinct rows in order of first appearance, and each row's position among them."""
    rows = np.ascontiguousarray(rows, dtype=np.int64 if int_rows else np.float64)
    _, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rows[np.sort(first)], rank[inverse.reshape(-1)]


def feature_row(device_features):
    """The device's feature row as floats (NaN where unknown), validated."""
    if device_features is None:
        return np.full(_N_FEATURES, np.nan)
    if isinstance(device_features, dict):
        device_features = pd.Series(device_features)
    if isinstance(device_features, pd.Series):
        unknown = sorted(set(device_features.index) - set(DEVICE_FEATURES))
        if unknown:
            raise ValueError(f"unknown device feature {unknown[0]!r}; features are "
                             f"{', '.join(DEVICE_FEATURES)}.")
        device_features = device_features.reindex(list(DEVICE_FEATURES))
    else:
        row = np.asarray(device_features, dtype=np.float64).reshape(-1)
        if row.shape != (_N_FEATURES,):
            raise ValueError(f"device_features must hold {_N_FEATURES} values "
                             f"({', '.join(DEVICE_FEATURES)}); got {row.size}.")
        device_features = pd.Series(row, index=list(DEVICE_FEATURES))
    # One validation for every form of row: numbers, kind codes, physical bounds.
    frame = device_features.to_frame().T
    frame.insert(0, "device", ["device"])
    return validate_device_table(frame, source="device_features").to_numpy()[0]
