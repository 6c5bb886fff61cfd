"""Few-shot designs in ``skedge evaluate-optimizer --shots 0,10`` (real NB201).

The optimizer's device row already holds the test device's measured latency
on the signature designs (at 0 shots too). At k > 0 shots, k more cells of the
device are "measured" (their true latencies, drawn at random among the other
cells), and a :class:`~skedge.crossdevice.CrossDeviceRegressor` fitted on the
training devices is adapted to all of them, the signature cells included: the
shots add to what the device row holds, never replace it. The designs are
chosen under the adapted latency by :func:`~skedge.optimize.design_with_shots`
(NB201 is small enough to be scored whole there). The records are scored
like the zero-shot ones, on true metrics.
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.utils import Bunch

from ..crossdevice import CrossDeviceRegressor
from ..datasets import to_pairs
from ..devices import DEVICE_FEATURES
from ..optimize._adapted import AdaptedObjective, design_with_shots

__all__ = ["fit_cross_device", "objective_values", "shot_designs"]


def fit_cross_device(space, bench, latency, train, sig_idx, random_state):
    """A :class:`~skedge.crossdevice.CrossDeviceRegressor` on every measured cell of the training devices.

    As in ``skedge evaluate-predictors``: the estimator has its defaults, so its
    networks and its known-device table see every measurement of the training
    devices (not the optimizer's subsample of cells).
    """

    X, y, groups = to_pairs(Bunch(**{**bench, "latency": latency}), devices=train)
    model = CrossDeviceRegressor(space=space, reference_designs=bench.designs[sig_idx],
                                 random_state=random_state, n_threads=1)
    return model.fit(X, y, groups=groups)


def shot_designs(opt, model, bench, latency, dev, device_row, lambdas, k, sig_idx, rng):
    """Designs for one test device chosen under its k-shot adapted latency.

    Returns
    -------
    designs : ndarray of shape (n_lambdas, n_choices)
    seconds : float
        Adaptation plus design time, per λ.
    objective : AdaptedObjective
        The device's objective with the adapted latency, the one the designs were
        chosen by.
    """

    cells = np.setdiff1d(np.flatnonzero(latency[dev].notna().to_numpy()), sig_idx)
    extra = rng.choice(cells, size=min(k, len(cells)), replace=False) if k else []
    shots = np.union1d(sig_idx, extra).astype(np.intp)
    start = time.perf_counter()
    feats = bench.devices.loc[dev, list(DEVICE_FEATURES)]
    adapted = model.adapt(feats, bench.designs[shots], latency[dev].to_numpy()[shots], name=dev)
    replace = {"latency": adapted.predict}
    designs, _, _ = design_with_shots(opt, device_row, np.asarray(lambdas).reshape(-1, 1),
                                      replace)
    seconds = (time.perf_counter() - start) / len(lambdas)
    return designs, seconds, AdaptedObjective(opt.objective_, replace)


def objective_values(objective, designs, device_row, lambdas):
    """``f[i, j]``: the objective of ``designs[j]`` at ``lambdas[i]`` on one device.

    ``objective`` is an :class:`~skedge.optimize.Objective` or an
    :class:`~skedge.optimize.AdaptedObjective`; its own
    ``value_from_metrics`` computes the values (one λ per row, latency only).
    """
    m = objective.metrics(designs, device_row)
    refs = objective.references(np.asarray(device_row)[None])
    lam = np.asarray(lambdas, dtype=np.float64).reshape(-1, 1, 1)
    return objective.value_from_metrics(m, lam, refs)
