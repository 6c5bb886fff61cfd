"""A user's own latency measurements (``skedge measure`` CSVs) as a benchmark Bunch."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from ..devices import DEVICE_FEATURES, validate_device_table
from ..spaces import get_space
from ._measurement_format import _check_columns, _space_key, read_measurement_file
from ._real import nb201_arch_idx

__all__ = ["load_measurements"]

_ID_NAMES = {"nb201": "arch_idx", "fbnet": "fbnet_id", "ofa": "ofa_id"}


def load_measurements(path_or_paths, *, space=None, data_home=None):
    """Load measurement CSVs written by ``skedge measure`` as a benchmark.

    Parameters
    ----------
    path_or_paths : str, path-like or list of them
        One or more files of :func:`skedge.measure.measure`, all of one space.
    space : DesignSpace or str, default=None
        Expected space; default: the one recorded in the files.
    data_home : str or path-like, default=None
        Used only to fill in NB201 ``arch_idx`` values that a file lacks
        (measured without a data home); ignored when the data is absent.

    Returns
    -------
    bunch : Bunch
        The benchmark contract of :mod:`skedge.datasets` (see
        :func:`~skedge.datasets.to_pairs`): ``designs`` (the designs measured
        successfully on at least one device setting, in first-measured
        order), ``design_ids`` (``arch_idx`` / ``fbnet_id`` / ``ofa_id`` where
        known, else -1), ``latency`` (ms, the per-design median, one column
        per ``device`` setting, NaN where not measured or failed; the median
        over the rounds of a ``--rounds`` run), ``energy`` (mJ per inference,
        the same layout, where any row has ``energy_mj``, else None), ``devices``
        (the recorded feature rows), ``reference_idx`` (positions of the
        reference designs measured, by reference rank), ``accuracy`` (None),
        ``frame`` (every row of the files, failed ones
        included) and ``DESCR``.

    Raises
    ------
    ValueError
        For files of different spaces, a space other than ``space``, a file
        that is not a measurement file, no successful row, or a device setting
        measured twice on the same design.

    Examples
    --------
    >>> import os, tempfile
    >>> from skedge.measure import measure
    >>> from skedge.datasets import load_measurements
    >>> out = os.path.join(tempfile.mkdtemp(), "m.csv")
    >>> _ = measure("nb201", out, designs=[[1] * 6, [2] * 6], warmup=0, repeats=1,
    ...             device_name="mine", progress=False)
    >>> bench = load_measurements(out)
    >>> bench.latency.shape, list(bench.devices.index)
    ((2, 1), ['mine'])
    """

    if isinstance(path_or_paths, (str, os.PathLike)):
        paths = [path_or_paths]
    else:
        paths = list(path_or_paths)
    if not paths:
        raise ValueError("no measurement file given.")
    frames = []
    for path in paths:
        frame = read_measurement_file(path)
        if "space" not in frame.columns:
            raise ValueError(f"{path} has no 'space' column; it is not a skedge measurement file.")
        spaces = sorted(set(frame["space"].astype(str)))
        if len(spaces) > 1:
            raise ValueError(f"{path} mixes the spaces {spaces}.")
        frames.append((Path(path), frame, spaces[0] if spaces else None))
    recorded = {s for _, _, s in frames if s is not None}
    if len(recorded) > 1:
        raise ValueError(f"the files hold measurements of different spaces: {sorted(recorded)}.")
    if space is None:
        if not recorded:
            raise ValueError(f"the files {[str(p) for p in paths]} hold no measurement.")
        space = get_space(recorded.pop())
    else:
        space = get_space(space)
    for path, frame, _ in frames:
        _check_columns(frame, space, path)
    frame = pd.concat([f.assign(source=str(p)) for p, f, _ in frames], ignore_index=True)
    ok = frame[frame["status"] == "ok"].copy()
    if ok.empty:
        raise ValueError(f"no successful measurement in {[str(p) for p in paths]}.")

    cols = list(space.choice_names)
    X = space.validate(ok[cols].to_numpy(np.float64), canonicalize=True)
    keys = [tuple(r) for r in X]
    uniq = {}
    for k in keys:
        uniq.setdefault(k, len(uniq))
    ok["_row"] = [uniq[k] for k in keys]
    dup = ok.duplicated(["device", "_row", "round"])
    if dup.any():
        first = ok[dup].iloc[0]
        raise ValueError(
            f"device setting {first['device']!r} holds two measurements of design "
            f"{first['design_str']!r} (in {first['source']}); rename one device setting."
        )
    designs = np.array(list(uniq), dtype=np.int64).reshape(-1, space.n_choices)

    ids = np.full(len(designs), -1, dtype=np.int64)
    recorded_ids = ok.dropna(subset=["design_id"]).groupby("_row")["design_id"].first()
    ids[recorded_ids.index.to_numpy()] = recorded_ids.to_numpy(np.int64)
    if space.name == "nb201" and (ids < 0).any():
        try:
            ids = nb201_arch_idx(designs, data_home=data_home)
        except FileNotFoundError:
            pass

    devices_order = list(dict.fromkeys(ok["device"]))

    def table(values):
        # The median over the rounds (passes over the design list) of each design.
        t = ok.pivot_table(index="_row", columns="device", values=values, aggfunc="median")
        t = t.reindex(index=range(len(designs)), columns=devices_order).astype(np.float64)
        t.index = pd.Index(ids, name=_ID_NAMES.get(space.name, "design_id"))
        t.columns = pd.Index([str(c) for c in t.columns])
        t.columns.name = None
        return t

    latency = table("latency_ms")
    energy = None
    ok["energy_mj"] = pd.to_numeric(ok.get("energy_mj", np.nan), errors="coerce")
    if ok["energy_mj"].notna().any():
        energy = table("energy_mj")

    features = ok.groupby("device", sort=False)[list(DEVICE_FEATURES)].first()
    devices = validate_device_table(features.loc[devices_order].reset_index(),
                                    source=", ".join(str(p) for p in paths))

    refs = ok.dropna(subset=["reference_rank"]).groupby("_row")["reference_rank"].min()
    reference_idx = refs.sort_values(kind="stable").index.to_numpy(np.int64)

    settings = []
    for name, rows in ok.groupby("device", sort=False):
        r0 = rows.iloc[0]
        threads = "?" if pd.isna(r0["threads"]) else int(r0["threads"])
        batch = "?" if pd.isna(r0["batch_size"]) else int(r0["batch_size"])
        where = (r0.get("gpu_name") if str(r0["target"]).startswith("cuda")
                 else r0["cpu_model"]) or "unknown hardware"
        settings.append(
            f"{name}: {rows['_row'].nunique()} designs, {threads} thread(s), batch {batch}, "
            f"{r0['backend']} on {where}, torch {r0['torch_version']}, median load "
            f"{rows['loadavg'].median():.2f}"
            + (f", energy from {r0['energy_counter']}" if rows["energy_mj"].notna().any()
               else "")
        )
    n_failed = int((frame["status"] != "ok").sum())
    descr = "\n".join([
        (f"Latency measured with skedge measure ({_space_key(space)}), from "
         + ", ".join(str(p) for p in paths) + "."),
        (f"{len(designs)} designs, {len(devices_order)} device settings; {n_failed} failed "
         "rows (kept in `frame`, NaN in `latency`)."),
        *settings,
    ])
    return Bunch(
        space=space,
        designs=designs,
        design_ids=np.asarray(ids, dtype=np.int64),
        accuracy=None,
        latency=latency,
        energy=energy,
        devices=devices,
        reference_idx=reference_idx,
        frame=frame,
        DESCR=descr,
    )
