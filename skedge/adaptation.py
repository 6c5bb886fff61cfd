"""One device as a :class:`~skedge.crossdevice.CrossDeviceRegressor` sees it after adaptation.

:meth:`CrossDeviceRegressor.adapt <skedge.crossdevice.CrossDeviceRegressor.adapt>`
returns an :class:`AdaptedDevice`: a fitted regressor over *designs* of one
device, built from its spec-sheet row, its measured shots, or both. Every
prediction is made in log space from three sources of knowledge, none of
which is refitted per device:

* the **networks** — the spec-sheet network (zero-shot; it ranks designs
  from the row clamped into its training devices' range) or the signature
  network, which reads the device's latencies on the reference designs;
* the **known devices** — their measured latencies, mixed to fit the shots
  (:class:`~skedge.fewshot.KnownDeviceMix`: the non-negative least-squares mix
  and the correlation kernel; the kernel alone with fewer shots than reference
  designs) and matched to the whole predicted profile
  (:func:`~skedge.fewshot.profile_mix`);
* the **shots themselves** — a ridge head on the design's one-hot encoding
  and log MACs, fitted to the residuals of the two above, its strength chosen
  by the small-sample corrected AIC (from "offset only" to "follow the
  shots"): with a few shots it sets the device's scale; with many, it moves
  the ranking towards what the device itself measured.

With shots, the three parts are weighted by the inverse of each part's error
variance on shots it did not see (``part_weights="cv"``, from three shots on;
leave-one-out, or ``_WEIGHT_FOLDS`` folds above that many shots): on hardware
unlike the known devices the networks extrapolate, and the shots show it.

With ``zero_shot_blend=True``, when the device also has a spec-sheet row
and the shots miss some reference design, its **zero-shot prediction** (put
on the shots' scale) stays in play: the two predictions are averaged in log
space with inverse-variance weights, each variance measured on shots the
prediction did not see. The few-shot path reads nothing of the spec sheet,
and with a handful of shots it can rank a device worse than the spec sheet
alone did; the zero-shot prediction never saw the shots, so its errors on
them are honest, and the few-shot path's are measured by refitting it
without the shots it is scored on. A handful of measurements is then less
likely to rank a device worse than it was ranked without them. Once every
reference design is measured the signature is real, not imputed, and the
few-shot prediction is used whole.

Statistics that standardize the blends (means and spreads over designs) are
fixed when the device is adapted, over the model's design grid, so a design's
prediction never depends on which other designs are asked for at the same
time.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold

from .fewshot import KnownDeviceMix, profile_mix

__all__ = ["AdaptedDevice"]

#: Ridge strengths the shot head chooses from (by AICc); the largest is an
#: offset in all but name (the features are one-hot and scaled).
_HEAD_ALPHAS = tuple(np.logspace(-2, 6, 17))

#: Folds of the cross-validations that weigh the few-shot parts against each
#: other and the few-shot prediction against the zero-shot one: leave-one-out
#: up to this many shots, where refitting
#: without one shot barely weakens the few-shot path; a cap on the refits
#: (each costs about 0.2 s on NB201) above. Both use the same refits.
_WEIGHT_FOLDS = 20


def _fit_head(Phi, residual):
    """Ridge head whose strength the small-sample corrected AIC chooses.

    AICc with the ridge's effective degrees of freedom (the trace of its hat
    matrix; Hurvich, Simonoff and Tsai, J. R. Stat. Soc. B 60, 1998) weighs
    how much closer to the shots a head comes against how many degrees of
    freedom it spends, and grows without bound as those approach the number
    of shots less two. A head as flexible as the design encoding (31 columns on
    NAS-Bench-201) then needs many shots, or a large gain, to be chosen.
    Cross-validation over the shots does not: with 19 shots, a draw whose
    leave-one-out error called the near-interpolating head 35 % better
    ranked the unseen cells of a held-out CPU worse (Spearman 0.960 -> 0.930);
    with one shot fewer, the same rule kept the offset.

    Returns the head and its leave-one-out error (log scale), which sizes
    the predictions' uncertainty.
    """
    n = len(residual)
    Xc = Phi - Phi.mean(axis=0)
    rc = residual - residual.mean()
    U, s, _ = np.linalg.svd(Xc, full_matrices=False)
    Ur = U.T @ rc
    best, chosen, loo = np.inf, len(_HEAD_ALPHAS) - 1, None
    for j, alpha in enumerate(_HEAD_ALPHAS):
        shrink = s**2 / (s**2 + alpha)
        fitted = U @ (shrink * Ur)
        trace = 1 + float(shrink.sum())  # the intercept, then the coefficients
        if n - trace - 2 <= 0:
            continue
        rss = max(float(((rc - fitted) ** 2).sum()), 1e-12 * n)
        aicc = n * np.log(rss / n) + 2 * n * (trace + 1) / (n - trace - 2)
        if aicc < best:
            leverage = 1 / n + (U**2) @ shrink
            best, chosen, loo = aicc, j, (rc - fitted) / (1 - leverage)
    if loo is None:  # too few shots for any head: the offset
        loo = rc / (1 - 1 / n)
    head = Ridge(alpha=_HEAD_ALPHAS[chosen]).fit(Phi, residual)
    return head, float(np.sqrt(np.mean(loo**2)))


class _Standardizer:
    """z-scores whose means and spreads are recorded on the grid, then replayed."""

    def __init__(self):
        self.stats = []
        self._replay = None

    def replay(self):
        self._replay = iter(self.stats)
        return self

    def stats_of(self, v):
        if self._replay is not None:
            return next(self._replay)
        mean, std = float(v.mean()), float(v.std())
        self.stats.append((mean, std if std > 1e-12 else 1.0))
        return self.stats[-1]

    def __call__(self, v):
        mean, std = self.stats_of(v)
        return (v - mean) / std


def _rescale_like(z_target, reference_stats):
    """A standardized score put back on the scale (mean, spread) of a reference."""
    mean, std = reference_stats
    return mean + std * z_target


class AdaptedDevice(RegressorMixin):
    """A fitted latency (or energy) predictor of one device over designs.

    Do not build it directly: it comes from
    :meth:`skedge.crossdevice.CrossDeviceRegressor.adapt`. It keeps a
    reference to that model (whose networks and known devices it reads, never
    changes) and the per-device state fitted from the shots.

    Attributes
    ----------
    name : str or None
        The device's name, when one was given.
    n_shots_ : int
        Number of measured designs the adaptation used.
    ignored_shots_ : ndarray of bool of shape (n_given,)
        Shots on degenerate designs (:meth:`DesignSpace.is_degenerate
        <skedge.spaces.DesignSpace.is_degenerate>`), left out of the fit
        while other shots remain: their output does not depend on the input,
        so their latency says nothing about the cost of the operations.
    mix_ : KnownDeviceMix or None
        The known-device mix fitted on the shots (k > 0).
    profile_weights_ : ndarray of shape (n_known_devices,)
        Weights of the known devices whose measured profiles match the
        device's predicted one.
    head_ : Ridge or None
        The residual head fitted on the shots (``shot_head="ridge"``, k >= 3).
    part_weights_ : ndarray of shape (3,) or None
        Weights of the signature network, the shot-fitted known-device mix and
        the profile-matched known devices in the few-shot prediction (log
        space): each part's inverse error variance on shots it did not see,
        normalized (``part_weights="cv"``, three shots or more). None where the
        model's fixed ``blend`` weighs them.
    head_rmse_ : float
        Its leave-one-out error over the shots (log scale): the part of the
        returned uncertainty that the shots measure.
    offset_ : float
        Log-space offset onto the shots (used when there is no head).
    shot_weight_ : float
        Weight of the few-shot prediction in log space against the zero-shot
        one (put on the shots' scale): the zero-shot prediction's error
        variance on the shots over the sum of both (cross-validated) error
        variances, while some reference design is not among the shots, with
        ``zero_shot_blend=True``. 1 otherwise: when all are, without a
        spec-sheet row, without shots, with a single shot, or with the
        blend off.
    weight_cv_rmse_ : float or None
        Cross-validated error (log scale) of the blend on the shots; None
        where no weight was computed.
    signature_ : ndarray of shape (n_references,) or None
        The device's latencies on the reference designs, measured or (where
        no shot covers a reference design) imputed.
    """

    def __init__(self, model, *, name=None):
        self.model = model
        self.name = name

    # ------------------------------------------------------------- fitting
    def _fit(self, features, designs, y, *, weigh=True):
        model = self.model
        self.features_ = features
        self.ignored_shots_ = np.zeros(0 if y is None else len(y), dtype=bool)
        if y is not None:
            # Degenerate NAS-Bench-201 cells read 0.04 ms on pixel3 against a
            # median of 10 ms; two of them among 20 shots took the known-device
            # mix and the head with them (Spearman over all cells 0.86 -> 0.45).
            dead = model.space_.is_degenerate(designs)
            if dead.any() and not dead.all():
                self.ignored_shots_ = dead
                designs, y = designs[~dead], y[~dead]
        self.n_shots_ = 0 if y is None else len(y)
        self.mix_ = self.head_ = self.signature_ = self._prior = None
        self.offset_, self.shot_weight_, self.weight_cv_rmse_ = 0.0, 1.0, None
        self.part_weights_ = self._refits = None
        grid = model.grid_designs_
        K = model.known_log_
        if self.n_shots_ == 0:
            self._knn = model._nearest_known(features)
            self._zero_stats = _Standardizer()
            clamped = model._zero_log(grid, features)
            self._speed = model._zero_speed(features, clamped)
            self._zero_shot(clamped + self._speed, K, self._zero_stats, fit=True)
            return self
        self.signature_ = model._shot_signature(features, designs, y)
        logy = np.log(y)
        Ks = model._known_log(designs)
        # With fewer shots than reference designs the device's own signature is
        # partly imputed, and a non-negative least-squares weight per known
        # device is fitted on a handful of points: only the correlation kernel,
        # which has no free weights, is used then.
        method = "both" if self.n_shots_ >= len(model.reference_designs_) else "kernel"
        self.mix_ = KnownDeviceMix(method=method).fit(np.exp(Ks), y)
        net = model._signature_log(grid, self.signature_)
        guide = (1 - model.blend) * net + model.blend * self._mix_log(K)
        self._profile(guide, K)
        parts = self._few_shot_parts(designs, Ks)
        if weigh and model.part_weights == "cv" and self.n_shots_ >= 3:
            self.part_weights_ = self._weigh_parts(features, designs, logy, Ks)
        residual = logy - self._blend(parts)
        self.offset_ = float(residual.mean())
        self.head_rmse_ = float(residual.std() * np.sqrt(self.n_shots_ / max(self.n_shots_ - 1, 1)))
        if model.shot_head == "ridge" and self.n_shots_ >= 3:
            self.head_, self.head_rmse_ = _fit_head(model._head_features(designs), residual)
        # Where the network and the known-device parts disagree, errors are larger:
        # their disagreement, scaled so that its mean over the shots is 1, shapes
        # the error the shots measured.
        self._disagreement_scale = max(float(parts.var(axis=0).mean()), 1e-12)
        # Only while part of the signature is imputed from the known devices:
        # that is where the few-shot path loses the spec sheet's information.
        # With every reference design measured, leaving shots out of a fold
        # would turn a measured signature into an imputed one, and the
        # cross-validation would misjudge the path it is meant to score.
        if (weigh and model.zero_shot_blend and self.n_shots_ >= 2
                and model.zero_shot_net_ is not None and not np.isnan(features).all()
                and (model._positions(model.reference_designs_, designs) < 0).any()):
            self._weigh_against_zero_shot(features, designs, logy)
        self._refits = None  # fit-time only: not kept with the adapted device
        return self

    def _fold_refits(self, features, designs, logy):
        """``(train, test, path)`` per fold: the few-shot path refitted without the test shots.

        Computed once per fit and shared by both weighings.
        """
        if self._refits is None:
            folds = KFold(min(self.n_shots_, _WEIGHT_FOLDS), shuffle=True, random_state=0)
            self._refits = [
                (train, test, AdaptedDevice(self.model)._fit(
                    features, designs[train], np.exp(logy[train]), weigh=False))
                for train, test in folds.split(designs)]
        return self._refits

    def _weigh_parts(self, features, designs, logy, Ks):
        """Inverse-variance weights of the few-shot parts, from shots they did not see.

        For each fold the path is refitted without the held-out shots (their
        reference latencies, if any, are then imputed, as for a device that
        did not measure them) and each part, put on the other shots' scale,
        predicts them. The textbook combination of estimates of one
        quantity follows: weights proportional to the inverse error
        variances. The parts err in weakly correlated ways, so no part is
        dropped unless the shots say it is far worse than the others.
        """
        err = np.empty((3, self.n_shots_))
        for train, test, fold in self._fold_refits(features, designs, logy):
            offset = (logy[train] - fold._few_shot_parts(designs[train], Ks[train])).mean(axis=1)
            err[:, test] = (fold._few_shot_parts(designs[test], Ks[test])
                            + offset[:, None] - logy[test])
        inverse = 1 / np.maximum((err**2).mean(axis=1), 1e-12)
        return inverse / inverse.sum()

    def _weigh_against_zero_shot(self, features, designs, logy):
        """Inverse-variance weight of the few-shot prediction against the zero-shot one.

        Each prediction's error variance is measured on shots it did not see:
        the zero-shot prediction never saw any (only its offset is fitted, on
        the other shots of each fold), the few-shot path is refitted without
        the held-out shots (leave-one-out up to ``_WEIGHT_FOLDS`` shots). The
        two are then weighted by their inverse variances, the textbook
        combination of two estimates of one quantity: no grid and no
        argmin, whose choice a handful of shots would make at random.
        Refitting without a shot makes the few-shot path slightly weaker
        than with all of them, so its variance is a little pessimistic, and
        ties lean towards the spec sheet, the safer side on hardware unlike
        the known devices.
        """
        prior = AdaptedDevice(self.model, name=self.name)._fit(features, None, None)
        zero = prior._predict_log(designs)[0]
        few_cv, zero_cv = np.empty(self.n_shots_), np.empty(self.n_shots_)
        for train, test, few in self._fold_refits(features, designs, logy):
            few_cv[test] = few._predict_log(designs[test])[0]
            zero_cv[test] = zero[test] + (logy[train] - zero[train]).mean()
        var_few = float(np.mean((few_cv - logy) ** 2))
        var_zero = float(np.mean((zero_cv - logy) ** 2))
        total = var_few + var_zero
        w = var_zero / total if total > 0 else 1.0
        self.shot_weight_ = float(w)
        self.weight_cv_rmse_ = float(np.sqrt(np.mean((w * few_cv + (1 - w) * zero_cv - logy) ** 2)))
        if w < 1:
            self._prior = prior
            self._prior_offset = float((logy - zero).mean())

    def _profile(self, log_profile, K):
        _, self.profile_weights_ = profile_mix(np.exp(log_profile), np.exp(K),
                                               temperature=self.model.profile_temperature,
                                               return_weights=True)

    def _mix_log(self, K):
        return np.log(self.mix_.predict(np.exp(K)))

    def _zero_shot(self, net, K, z, *, fit):
        """Zero-shot log prediction and its log-space variance (disagreement)."""
        model = self.model
        blend = model.blend
        if fit:
            self.profile_weights_ = np.zeros(K.shape[1])
        if blend == 0:
            return net, np.zeros(len(net))
        net_stats = z.stats_of(net)
        zK = (K - model.known_log_mean_) / model.known_log_std_
        # Average ranking of all known devices (1/3) and of the spec-sheet
        # nearest ones (2/3): spec sheets alone generalize poorly to unfamiliar
        # hardware, so the network is pulled towards devices that exist.
        prior = z(zK.mean(axis=1)) / 3 + 2 * z(zK[:, self._knn].mean(axis=1)) / 3
        ranked = _rescale_like(z((1 - blend) * z(net) + blend * z(prior)), net_stats)
        if fit:
            self._profile(ranked, K)
        matched = K @ self.profile_weights_
        # Then averaged with the ranking of the known devices whose measured
        # profiles match it: their measurement structure, not a smoothed one.
        ranked_stats = z.stats_of(ranked)
        z_net, z_matched = z(net), z(matched)
        out = _rescale_like(z(z(ranked) / 2 + z_matched / 2), ranked_stats)
        if fit:
            # Without shots the scale is a guess: spec-sheet neighbours differ in
            # speed by about this much (log scale).
            self._scale_var = float(np.var(model.known_log_mean_[self._knn]))
        # Large where the network and the matched devices disagree: hardware
        # unlike any known device.
        var = ((z_net - z_matched) * net_stats[1] / 2) ** 2 + self._scale_var
        return out, var

    def _few_shot_parts(self, designs, K):
        """Log predictions of the network, the shot-fitted mix and the matched devices."""
        net = self.model._signature_log(designs, self.signature_)
        return np.vstack([net, self._mix_log(K), K @ self.profile_weights_])

    def _blend(self, parts):
        if self.part_weights_ is not None:
            return self.part_weights_ @ parts
        net, mix, matched = parts
        blend = self.model.blend
        # Known devices twice (mixed to fit the shots, matched to the whole
        # predicted profile), then a geometric blend with the network: their
        # errors are weakly correlated, so the blend ranks better than any part.
        return (1 - blend) * net + blend * (mix + matched) / 2

    # ---------------------------------------------------------- predicting
    def _predict_log(self, designs):
        model = self.model
        designs = model._check_designs(designs)
        K = model._known_log(designs)
        if self.n_shots_ == 0:
            net = model._zero_log(designs, self.features_, getattr(self, "_speed", 0.0))
            return self._zero_shot(net, K, self._zero_stats.replay(), fit=False)
        parts = self._few_shot_parts(designs, K)
        log_pred = self._blend(parts)
        head = self.offset_ if self.head_ is None else \
            self.head_.predict(model._head_features(designs))
        shape = parts.var(axis=0) / self._disagreement_scale
        log_pred = log_pred + head
        rmse = self.head_rmse_
        if self._prior is not None:
            w = self.shot_weight_
            zero = self._prior._predict_log(designs)[0] + self._prior_offset
            log_pred, rmse = w * log_pred + (1 - w) * zero, self.weight_cv_rmse_
        if self.n_shots_ < 3:
            # Too few shots to measure an error: the disagreement itself.
            return log_pred, shape * self._disagreement_scale
        # Half homoscedastic, half shaped by the disagreement: the mean over the
        # shots is the head's leave-one-out error (or the blend's CV error).
        return log_pred, rmse**2 * (1 + shape) / 2

    def predict(self, X, return_std=False):
        """Predicted latency (or energy) of designs on this device.

        Parameters
        ----------
        X : array-like of shape (n_designs, n_choices)
            Designs of the model's space (option indices).
        return_std : bool, default=False
            Also return an uncertainty in target units (a log-scale spread
            times the prediction). With three shots or more: the shot head's
            leave-one-out error (the blend's cross-validated error where the
            zero-shot prediction is blended in), larger where the network and
            the known-device parts disagree. With fewer: that disagreement
            (zero-shot, plus how much the spec-sheet neighbours differ in
            speed).

        Returns
        -------
        y_pred : ndarray of shape (n_designs,)
        y_std : ndarray of shape (n_designs,)
            Only with ``return_std=True``.
        """
        log_pred, log_var = self._predict_log(X)
        y = np.exp(log_pred)
        return (y, y * np.sqrt(log_var)) if return_std else y

    def __repr__(self):
        name = f"{self.name!r}, " if self.name is not None else ""
        return f"AdaptedDevice({name}n_shots={self.n_shots_})"
