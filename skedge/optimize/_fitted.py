"""Fitted predictors as inputs of the optimizers: one convention, one validation.

Both optimizers (:class:`~skedge.optimize.AmortizedDesignOptimizer`,
:class:`~skedge.optimize.SearchBaseline`) take the fitted accuracy, latency
(and energy) predictors as parameters, and follow scikit-learn's convention
for them: :func:`sklearn.base.clone` clones (hence unfits) a predictor given
as it is, and keeps one wrapped in :class:`sklearn.frozen.FrozenEstimator`.
Wrap fitted predictors in ``FrozenEstimator`` to clone an optimizer (e.g. in
a grid search): a clone then never refits nor reconfigures the user's
predictor (``FrozenEstimator.set_params`` refuses nested parameters), and an
unwrapped predictor is copied, so a clone never shares mutable state with the
original.

:func:`build_objective` validates the predictors against the design space
(fitted? built for this space? accepts its designs?) and returns their
:class:`~skedge.optimize.Objective`.
"""

from __future__ import annotations

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline

from ..preprocessing import DeviceFeatureEncoder
from ..spaces import get_space
from ._objective import Objective

__all__ = ["PREDICTOR_PARAMS", "build_objective", "kind_column", "unfreeze"]

#: The parameters of an optimizer that hold fitted predictors.
PREDICTOR_PARAMS = ("accuracy", "latency", "energy")


def unfreeze(est):
    """The predictor inside a :class:`sklearn.frozen.FrozenEstimator` (or ``est`` itself)."""
    return est.estimator if isinstance(est, FrozenEstimator) else est


def _declared_spaces(est):
    """Design spaces named by the encoders of a fitted predictor (``space`` parameters)."""
    steps = [s for _, s in est.steps] if isinstance(est, Pipeline) else [est]
    out = []
    for step in steps:
        parts = [step]
        if isinstance(step, ColumnTransformer) and hasattr(step, "transformers_"):
            parts = [t for _, t, _ in step.transformers_]
        for part in parts:
            space = getattr(part, "space", None)
            if space is not None and not isinstance(part, str):
                try:
                    out.append(get_space(space))
                except ValueError:
                    pass
    return out


def build_objective(space, accuracy, latency, energy=None):
    """Validate fitted predictors against ``space`` and build their :class:`Objective`.

    Predictors may be wrapped in :class:`sklearn.frozen.FrozenEstimator` (which
    keeps them fitted through :func:`sklearn.base.clone`, e.g. in a grid
    search). Raises a ``ValueError`` naming the predictor that is unfitted or
    was fitted for another design space.
    """
    space = get_space(space)
    preds = {"accuracy": unfreeze(accuracy), "latency": unfreeze(latency),
             "energy": unfreeze(energy) if energy is not None else None}
    for name, est in preds.items():
        if est is None:
            continue
        for other in _declared_spaces(est):
            if other != space:
                raise ValueError(
                    f"the {name} predictor was built for {other!r}, not for {space!r}."
                )
    try:
        objective = Objective(space, preds["accuracy"], preds["latency"], preds["energy"])
    except ValueError as exc:
        if "not fitted" in str(exc):
            raise ValueError(
                f"{exc} (sklearn.base.clone unfits predictors passed as parameters; wrap "
                "fitted ones in sklearn.frozen.FrozenEstimator to keep them through clone)."
            ) from None
        raise ValueError(f"the predictors do not fit {space!r}: {exc}") from None
    # An accuracy predictor for another space with no declared space shows up here.
    probe = space.sample(2, random_state=0)
    try:
        preds["accuracy"].predict(probe)
    except ValueError as exc:
        raise ValueError(
            f"the accuracy predictor does not accept designs of {space!r} "
            f"({space.n_choices} columns): {exc}"
        ) from None
    return objective


def kind_column(objective):
    """Position of the device ``kind`` column among the optimizer's device columns, if any."""
    latency = objective.latency
    if not (isinstance(latency, Pipeline) and isinstance(latency.steps[0][1], ColumnTransformer)):
        return None
    features = latency.steps[0][1]
    for _, trans, cols in features.transformers_:
        if isinstance(trans, DeviceFeatureEncoder) and getattr(trans, "kind_col_", None) \
                is not None:
            position = np.arange(features.n_features_in_)[cols][trans.kind_col_]
            return int(position) - objective.space.n_choices
    return None
