"""Few-shot designs in ``skedge evaluate-optimizer --shots 0,10`` (real NB201).

At k > 0 shots, k cells of each test device are "measured" (their true
latencies, drawn at random, the signature cells excluded), a
:class:`~skedge.crossdevice.CrossDeviceRegressor` fitted on the training
devices is adapted to them, and the optimizer's proposals (its λ sweep plus
greedy moves) are re-scored under the adapted latency
(:func:`~skedge.optimize._adapted.design_with_shots`). The records are scored
like the zero-shot ones, on true metrics.
"""

from __future__ import annotations

import time

import numpy as np

from ..crossdevice import CrossDeviceRegressor
from ..devices import DEVICE_FEATURES
from ..optimize._adapted import design_with_shots

__all__ = ["fit_cross_device", "shot_designs"]


def fit_cross_device(space, bench, latency, train, rows_of, sig_idx, random_state):
    """A :class:`~skedge.crossdevice.CrossDeviceRegressor` on the training devices' cells."""

    feats = bench.devices.loc[:, list(DEVICE_FEATURES)]
    X, y, groups = [], [], []
    for dev in train:
        rows = rows_of[dev]
        X.append(np.hstack([bench.designs[rows],
                            np.tile(feats.loc[dev].to_numpy(np.float64), (len(rows), 1))]))
        y.append(latency[dev].to_numpy()[rows])
        groups += [dev] * len(rows)
    model = CrossDeviceRegressor(space=space, reference_designs=bench.designs[sig_idx],
                                 random_state=random_state, n_threads=1)
    return model.fit(np.vstack(X), np.concatenate(y), groups=np.array(groups))


def shot_designs(opt, model, bench, latency, dev, device_row, lambdas, k, sig_idx, rng):
    """Designs for one test device chosen under its k-shot adapted latency.

    Returns
    -------
    designs : ndarray of shape (n_lambdas, n_choices)
    seconds : float
        Adaptation plus design time, per λ.
    """

    cells = np.setdiff1d(np.flatnonzero(latency[dev].notna().to_numpy()), sig_idx)
    shots = rng.choice(cells, size=min(k, len(cells)), replace=False)
    start = time.perf_counter()
    feats = bench.devices.loc[dev, list(DEVICE_FEATURES)]
    adapted = model.adapt(feats, bench.designs[shots], latency[dev].to_numpy()[shots], name=dev)
    designs, _, _ = design_with_shots(opt, device_row, np.asarray(lambdas).reshape(-1, 1),
                                      {"latency": adapted.predict})
    return designs, (time.perf_counter() - start) / len(lambdas)
