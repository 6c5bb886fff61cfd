"""The workflow's comparison: the optimizer vs a per-device search on every (unseen device, λ).

Both answer the same predicted objective; the table holds their predicted
metrics, objective gap, time per (device, λ) and the *true* metrics and
objective of both designs (simulated, or measured for NAS-Bench-201).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from ..devices import DEVICE_FEATURES
from ..optimize import SearchBaseline
from ._summary import design_summary, kind_name

__all__ = ["compare", "device_lambda_rows"]


def device_lambda_rows(features, names, lambdas, lam_en, with_energy):
    """Optimizer rows ``[device features..., λ_lat (, λ_en)]`` of every (device, λ), device-major.

    Returns the rows, the device name of each row and its λ_lat.
    """
    out, devices, lams = [], [], []
    for name, row in zip(names, features):
        for lam in lambdas:
            out.append(np.r_[row, lam, lam_en] if with_energy else np.r_[row, lam])
            devices.append(name)
            lams.append(lam)
    return np.array(out), devices, np.array(lams)


def compare(data, models, opt, lambdas, lam_en, sizes, random_state):
    """Optimizer vs search on every (unseen device, λ): one table row per method."""
    obj = opt.objective_
    with_energy = models.energy is not None
    features = data.bench.devices.loc[data.test_devices, list(DEVICE_FEATURES)]
    X, devices, lams = device_lambda_rows(features.to_numpy(np.float64), data.test_devices,
                                          lambdas, lam_en, with_energy)
    D = X[:, : obj.n_device_columns]

    opt.predict(X[:1])  # warm-up: first-call costs are not per-row costs
    opt_designs, opt_seconds = [], []
    for row in X:
        t0 = time.perf_counter()
        opt_designs.append(opt.predict(row[None])[0])
        opt_seconds.append(time.perf_counter() - t0)
    opt_designs = np.array(opt_designs)
    # Many rows in one call share the fixed costs (input checks, encoders).
    t0 = time.perf_counter()
    opt.predict(X)
    batched = (time.perf_counter() - t0) / len(X)

    search = SearchBaseline(space=data.space, accuracy=models.accuracy, latency=models.latency,
                            energy=models.energy, random_state=random_state, **sizes["search"])
    found = search.fit(X).search(X)

    frames = []
    for method, designs, f, seconds in (
        ("optimizer", opt_designs, obj.value(opt_designs, X), np.array(opt_seconds)),
        (f"search ({found.method})", found.designs, found.objective, found.search_time),
    ):
        m = obj.metrics(designs, D)
        true = data.truth(designs, devices)
        frame = pd.DataFrame({
            "device": devices,
            "kind": [kind_name(v) for v in D[:, 0]],
            "lambda_latency": lams,
        })
        if with_energy:
            frame["lambda_energy"] = lam_en
        frame["method"] = method
        frame["design"] = data.space.to_strings(designs)
        frame["summary"] = design_summary(data.space, designs)
        frame["accuracy"] = m["accuracy"]
        frame["latency_ms"] = m["latency"]
        if with_energy:
            frame["energy_mJ"] = m["energy"]
        frame["objective"] = f
        frame["seconds"] = seconds
        frame["true_accuracy"] = true["accuracy"]
        frame["true_latency_ms"] = true["latency"]
        if with_energy:
            frame["true_energy_mJ"] = true["energy"]
        frame["true_objective"] = obj.true_value(data.truth, designs, devices,
                                                 X[:, obj.n_device_columns:])
        frame["order"] = np.arange(len(frame))
        frames.append(frame)
    frames[0]["gap"] = frames[0]["objective"].to_numpy() - frames[1]["objective"].to_numpy()
    frames[0]["true_gap"] = (frames[0]["true_objective"].to_numpy()
                             - frames[1]["true_objective"].to_numpy())
    frames[1]["gap"] = frames[1]["true_gap"] = np.nan
    results = pd.concat(frames, ignore_index=True)
    results = results.sort_values(["order", "method"], kind="stable").drop(columns="order")
    results = results.reset_index(drop=True)
    results.attrs["batched_seconds"] = batched
    return results
