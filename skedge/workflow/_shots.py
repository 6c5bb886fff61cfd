"""Designs for devices with a few measured designs (``skedge apply --shots``, the run's table).

A measurement file written by ``skedge measure`` (any designs, the reference
designs included or not) names device settings and their measured latencies
(and energies). Each such device must be one of the ``--device`` rows. Its
latency (and energy) predictor is adapted with
:class:`~skedge.fewshot.FewShotAdapter` (a log-affine correction of the saved
zero-shot pipeline fitted on the shots), and its designs are chosen under the
adapted predictions from the optimizer's proposals
(:func:`~skedge.optimize.design_with_shots`). Every check runs
before any fitting.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from ..datasets import load_measurements
from ..devices import DEVICE_FEATURES
from ..fewshot import FewShotAdapter
from ..optimize._adapted import design_with_shots

__all__ = ["adapt_devices", "read_shots", "zero_vs_few_shot"]


def read_shots(path, space, table):
    """Check a shots file against the space and the ``--device`` table.

    Parameters
    ----------
    path : str or path-like
    space : DesignSpace
        The space of the saved models.
    table : pandas.DataFrame
        The device table of ``--device`` (index: device names).

    Returns
    -------
    shots : dict of str -> Bunch
        Per device named in the file: ``designs``, ``latency`` and ``energy``
        (None when not measured) of its successful rows.

    Raises
    ------
    FileNotFoundError, ValueError
        No such file; a file of another space, of failed rows only, or naming
        a device absent from ``table``.
    """

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"shots file {path} does not exist.")
    try:
        bench = load_measurements(path, space=space)
    except ValueError as exc:
        raise ValueError(f"--shots: {exc}") from None
    names = list(bench.latency.columns)
    absent = [n for n in names if n not in table.index]
    if absent:
        raise ValueError(
            f"--shots: {path} measures device {absent[0]!r}, which is not in the --device "
            f"file (devices there: {', '.join(map(str, table.index))}); add its feature row "
            "or rename the device setting."
        )
    shots = {}
    for name in names:
        lat = bench.latency[name].to_numpy(np.float64)
        ok = np.isfinite(lat) & (lat > 0)
        energy = None
        if bench.energy is not None and name in bench.energy.columns:
            en = bench.energy[name].to_numpy(np.float64)
            if (np.isfinite(en[ok]) & (en[ok] > 0)).all():
                energy = en[ok]
        if ok.any():
            shots[name] = Bunch(designs=bench.designs[ok], latency=lat[ok], energy=energy)
    if not shots:  # pragma: no cover - load_measurements refuses a file with no ok row
        raise ValueError(f"--shots: {path} holds no successful measurement.")
    return shots


def adapt_devices(models, table, shots):
    """Adapted predictors of each device with shots, as ``replace`` dicts.

    Returns
    -------
    adapted : dict of str -> (dict, str)
        Per device: the ``replace`` argument of
        :func:`~skedge.optimize.design_with_shots` and a line saying
        what was adapted.
    """

    adapted = {}
    for name, s in shots.items():
        d = table.loc[name, list(DEVICE_FEATURES)].to_numpy(np.float64)

        def pairs(designs, d=d):
            return np.hstack([designs, np.tile(d, (len(designs), 1))])

        replace, parts = {}, []
        for metric, y, est in (("latency", s.latency, models.latency),
                               ("energy", s.energy, models.energy)):
            if y is None or est is None:
                continue
            adapter = FewShotAdapter(est).fit(pairs(s.designs), y)
            replace[metric] = lambda Z, a=adapter, p=pairs: a.predict(p(Z))
            parts.append(f"{metric}: log y = {adapter.intercept_:+.3f} + "
                         f"{adapter.slope_:.2f} log(predicted)")
        line = (f"{name}: adapted from {len(s.latency)} shot(s) "
                f"({'; '.join(parts)}); the optimizer designs for the adapted device "
                "and the adapted predictions choose")
        adapted[name] = (replace, line)
    return adapted


def zero_vs_few_shot(data, models, opt, lambdas, lam_en, random_state, k=10):
    """``skedge run``: per unseen device and λ, the zero-shot and k-shot designs, true metrics.

    The k shots are designs of the benchmark measured on the device (drawn at
    random); the k-shot designs are chosen as ``skedge apply --shots`` chooses
    them. Returns a frame with one row per (device, λ, shots).
    """


    b, obj = data.bench, opt.objective_
    rng = np.random.RandomState(random_state)
    table = b.devices.loc[data.test_devices, list(DEVICE_FEATURES)]
    with_energy = obj.n_lambdas == 2
    lam = (np.column_stack([lambdas, np.full(len(lambdas), lam_en)]) if with_energy
           else np.asarray(lambdas, dtype=np.float64)[:, None])
    frames = []
    for dev in data.test_devices:
        measured = np.flatnonzero(b.latency[dev].notna().to_numpy())
        pick = rng.choice(measured, size=min(k, len(measured)), replace=False)
        energy = b.energy[dev].to_numpy()[pick] if with_energy and b.energy is not None else None
        shots = {dev: Bunch(designs=b.designs[pick], latency=b.latency[dev].to_numpy()[pick],
                            energy=energy)}
        replace, _ = adapt_devices(models, table, shots)[dev]
        d = table.loc[dev].to_numpy(np.float64)
        zero = opt.predict(np.column_stack([np.tile(d, (len(lam), 1)), lam]))
        few, _, _ = design_with_shots(opt, d, lam, replace)
        for n, designs in ((0, zero), (len(pick), few)):
            true = data.truth(designs, [dev] * len(designs))
            f = obj.true_value(data.truth, designs, [dev] * len(designs), lam)
            frame = pd.DataFrame({"device": dev, "lambda_latency": lam[:, 0], "shots": n,
                                  "design": data.space.to_strings(designs),
                                  "true_accuracy": true["accuracy"],
                                  "true_latency_ms": true["latency"]})
            if with_energy:
                frame["true_energy_mJ"] = true["energy"]
            frame["true_objective"] = f
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)

