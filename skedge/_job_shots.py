"""``skedge apply --shots FILE``: designs for devices with a few measured designs.

A measurement file written by ``skedge measure`` (any designs, the reference
designs included or not) names device settings and their measured latencies
(and energies). Each such device must be one of the ``--device`` rows. Its
latency (and energy) predictor is adapted with
:class:`~skedge.fewshot.FewShotAdapter` (a log-affine correction of the saved
zero-shot pipeline fitted on the shots), and its designs are chosen under the
adapted predictions from the optimizer's proposals
(:func:`~skedge.optimize._adapted.design_with_shots`). Every check runs
before any fitting.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from .devices import DEVICE_FEATURES

__all__ = ["adapt_devices", "read_shots"]


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
    from .datasets import load_measurements

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
        :func:`~skedge.optimize._adapted.design_with_shots` and a line saying
        what was adapted.
    """
    from .fewshot import FewShotAdapter

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
                f"({'; '.join(parts)}); designs chosen under the adapted predictions")
        adapted[name] = (replace, line)
    return adapted
