"""Saved models applied to new devices: one design per (device, λ), adapted to shots if any.

The library half of ``skedge apply``: :func:`design_for_devices` gives the
optimizer's design per (device, λ) with its predicted metrics; for a device
with shots (:func:`~skedge.workflow.read_shots`), under its adapted
predictions. :func:`sweep_lambdas` is the λ sweep of the Pareto fronts and
budgets (``--front``, ``--max-latency``) and of the run's plots.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from ..devices import DEVICE_FEATURES
from ..optimize._adapted import AdaptedObjective, design_with_shots
from ..optimize._pareto import DEFAULT_LAMBDAS
from ._compare import device_lambda_rows
from ._shots import adapt_devices
from ._summary import design_summary

__all__ = ["check_device_columns", "design_for_devices", "sweep_lambdas"]


def check_device_columns(objective):
    """Refuse an optimizer whose device columns are not :data:`~skedge.devices.DEVICE_FEATURES`."""
    if objective.n_device_columns != len(DEVICE_FEATURES):
        raise ValueError(
            f"the optimizer takes {objective.n_device_columns} device columns; skedge apply "
            f"supplies the {len(DEVICE_FEATURES)} DEVICE_FEATURES only."
        )


def sweep_lambdas(with_energy, lam_en):
    """The λ_lat sweep of the fronts (``DEFAULT_LAMBDAS``), with λ_en fixed at ``lam_en``."""
    if with_energy:
        return np.column_stack([DEFAULT_LAMBDAS, np.full(len(DEFAULT_LAMBDAS), lam_en)])
    return DEFAULT_LAMBDAS


def design_for_devices(models, table, *, lambdas, lambda_energy, shots):
    """The optimizer's design for every (device, λ) of a device table.

    Parameters
    ----------
    models : Bunch
        A models folder (:func:`skedge.persistence.load_models`).
    table : pandas.DataFrame
        Device rows with the :data:`~skedge.devices.DEVICE_FEATURES` columns,
        indexed by device name.
    lambdas : list of float
        λ_lat values.
    lambda_energy : float or None
        λ_en (None for models without energy).
    shots : dict
        Measured designs per device (:func:`~skedge.workflow.read_shots`);
        those devices get designs under their adapted predictions.

    Returns
    -------
    frame : pandas.DataFrame
        One row per (device, λ): ``device``, ``lambda_latency``
        (``lambda_energy``), ``design``, ``summary``, predicted ``accuracy``,
        ``latency_ms`` (``energy_mJ``) and ``objective``.
    seconds : float
        Wall time of the optimizer's batched predict.
    adapted : dict of str -> (dict, str)
        Per device with shots: its adapted predictors and a line saying what
        was adapted (:func:`~skedge.workflow.adapt_devices`).
    """
    opt, space = models.optimizer, models.space
    obj = opt.objective_
    check_device_columns(obj)
    with_energy = obj.n_lambdas == 2
    D = table[list(DEVICE_FEATURES)].to_numpy(np.float64)
    X, names, lams = device_lambda_rows(D, table.index, lambdas, lambda_energy, with_energy)
    obj.split(X)  # clear error on NaN features the latency predictor cannot impute
    start = time.perf_counter()
    designs = opt.predict(X)
    seconds = time.perf_counter() - start
    m = obj.metrics(designs, X[:, : obj.n_device_columns])
    refs = obj.references(X[:, : obj.n_device_columns])
    adapted = adapt_devices(models, table, shots)
    for name, (replace, _) in adapted.items():
        mine = np.flatnonzero(np.asarray(names) == name)
        d = X[mine[0], : obj.n_device_columns]
        designs[mine], _, _ = design_with_shots(opt, d, X[mine, obj.n_device_columns:], replace)
        sub = AdaptedObjective(obj, replace)
        for k, v in sub.metrics(designs[mine], d).items():
            m[k][mine] = v
        refs[mine] = sub.references(X[mine, : obj.n_device_columns])
    frame = pd.DataFrame({"device": names, "lambda_latency": lams})
    if with_energy:
        frame["lambda_energy"] = lambda_energy
    frame["design"] = space.to_strings(designs)
    frame["summary"] = design_summary(space, designs)
    frame["accuracy"] = m["accuracy"]
    frame["latency_ms"] = m["latency"]
    if with_energy:
        frame["energy_mJ"] = m["energy"]
    frame["objective"] = obj.value_from_metrics(m, X[:, obj.n_device_columns:], refs)
    return frame, seconds, adapted
