"""The measurement job: :func:`measure` (``skedge measure``) and :func:`repeatability`."""

from __future__ import annotations

import contextlib
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from .. import models as _models  # _models.build_model: looked up at call time (tests replace it)
from .._torch import check_device
from ..datasets._measurement_format import (
    _append_line,
    _check_header_holds,
    _prepare_file,
    _space_key,
    read_measurement_file,
)
from ..spaces import get_space
from ._context import _loadavg, device_context
from ._designs import _non_negative, select_designs
from ._energy import energy_per_run, idle_baseline, open_energy_counter
from ._export import read_manifest
from ._optional import optional_import
from ._timers import _positive, onnx_runner, time_runs, torch_runner

__all__ = ["measure", "repeatability"]

BACKENDS = ("torch", "onnxruntime")


def _onnx_designs(space, models, batch_size):
    manifest = read_manifest(models, space=space)
    fixed = int(manifest["batch_size"].iloc[0])
    if batch_size not in (None, fixed):
        raise ValueError(f"the models in {models} were exported with batch size {fixed}, not "
                         f"{batch_size}; export again with --batch-size {batch_size}.")
    X = space.validate(manifest[list(space.choice_names)].to_numpy(), canonicalize=True)
    ranks = [None if pd.isna(r) else int(r) for r in manifest["reference_rank"]]
    ids = [None if pd.isna(i) else int(i) for i in manifest["design_id"]]
    files = [Path(manifest.attrs["folder"]) / f for f in manifest["file"]]
    return X, ranks, ids, files, fixed


def _check_settings(mine, settings, out, device_name):
    """Refuse rows of another setting under the same device name."""
    for col, want in settings.items():
        values = mine[col] if col in mine.columns else pd.Series(dtype=str)
        if isinstance(want, str):
            got = set(values.fillna("").astype(str)) - {want}
        else:
            num = pd.to_numeric(values, errors="coerce")
            got = set(values[num != want].astype(str))
        if got:
            raise ValueError(
                f"{out} holds device setting {device_name!r} measured with {col}="
                f"{min(got)}, not {want}; use another device name for another setting."
            )


def _done_keys(existing, space, device_name, settings, out):
    if existing is None or not len(existing):
        return set()
    mine = existing[existing["device"] == device_name]
    _check_settings(mine, settings, out, device_name)
    if not len(mine):
        return set()
    values = mine[list(space.choice_names)].apply(pd.to_numeric, errors="coerce")
    try:
        held = space.validate(values.to_numpy(np.float64), canonicalize=True)
    except ValueError as exc:
        raise ValueError(f"{out} holds a design outside {space!r}: {exc}") from None
    rounds = pd.to_numeric(mine["round"], errors="coerce").fillna(1).astype(int)
    return {(tuple(r), k) for r, k in zip(held, rounds)}


def measure(space, out, *, designs=None, n=None, include_reference=False, random_state=None,
            threads=1, batch_size=1, warmup=5, repeats=20, quantize=None, device_name=None,
            resume=False, data_home=None, progress=True, device="cpu", backend="torch",
            models=None, cuda_graphs=False, rounds=1, energy=False, energy_seconds=1.0,
            idle_seconds=2.0, rapl_root=None):
    """Measure the latency (and energy) of designs on this machine into a CSV file.

    Everything is checked before the first design is timed: the space, the
    designs, the numeric settings, the device (a CUDA GPU torch can see), the
    energy counter and, when resuming, the existing file (same space, all
    columns, and no other settings recorded under the same device name). A
    design whose network fails to build or run is recorded with
    ``status="failed"`` and its error, and the run goes on.

    Parameters
    ----------
    space : DesignSpace or str
        The design space.
    out : str or path-like
        The CSV file. It must not exist (or be empty) unless ``resume``.
    designs : array-like of shape (n_designs, n_choices), default=None
        Designs to measure (option indices); duplicates are measured once.
    n : int, default=None
        Otherwise, measure ``n`` distinct designs sampled uniformly (none of
        them a reference design, so ``include_reference`` adds 10 more).
    include_reference : bool, default=False
        Also measure (first) the space's 10 reference designs, read from
        ``reference_archs.json`` of the data home; their rows get
        ``reference_rank`` 0..9.
    random_state : int, RandomState instance or None
        Seed of the sample.
    threads : int, default=1
        Intra-op threads (torch or onnxruntime; torch's is restored afterwards).
    batch_size : int, default=1
        Images per inference (with ``backend="onnxruntime"``: the exported one).
    warmup, repeats : int, default=5, 20
        Untimed and timed runs per design (see :func:`time_runs`).
    quantize : {None, "int8"}, default=None
        Time the int8 post-training-quantized network (see
        :func:`skedge.models.build_model`); ``precision_bits`` becomes 8.
    device_name : str, default=None
        Device-setting name (the ``device`` column, a latency column once
        loaded); default ``local_<cpu>_t<threads>`` or ``cuda_<gpu>`` (+
        ``_ort``, ``_graphs``, ``_int8``, ``_<batch>``). Use one name per
        setting: two thread counts are two settings.
    resume : bool, default=False
        Append to an existing file: repair a torn last line, then skip the
        (design, round) pairs it already holds for this device setting
        (failed ones too).
    data_home : str or path-like, default=None
        Data home for the reference designs and NB201 ``arch_idx`` values.
    progress : bool, default=True
        Print one line per design to stderr.
    device : str, default="cpu"
        ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (torch backend).
    backend : {"torch", "onnxruntime"}, default="torch"
        ``"onnxruntime"`` times the ONNX files of ``models`` (written by
        :func:`export_onnx`) on this CPU; the designs are the manifest's.
    models : str or path-like, default=None
        The export folder (or its ``manifest.csv``), for ``backend="onnxruntime"``.
    cuda_graphs : bool, default=False
        Time the replay of a captured CUDA graph (a separate setting: the
        ``cuda_graphs`` column, and ``_graphs`` in the default name).
    rounds : int, default=1
        Passes over the design list; each (design, round) is one row, so the
        agreement between passes (:func:`repeatability`) shows how noisy the
        setting is.
    energy : bool, default=False
        Also measure the energy per inference (``energy_mj``) with the
        device's hardware counter: NVML on a GPU, RAPL on a CPU (see
        :func:`open_energy_counter`); the idle power (``idle_power_w``) and
        the counter's resolution are measured once first and recorded.
    energy_seconds : float, default=1.0
        Minimum length of the loop whose energy is read, per design.
    idle_seconds : float, default=2.0
        Length of the idle baseline.
    rapl_root : str or path-like, default=None
        The powercap folder (default ``/sys/class/powercap``).

    Returns
    -------
    frame : pandas.DataFrame
        The whole file after the run (all device settings it holds).

    Examples
    --------
    >>> import tempfile, os
    >>> from skedge.measure import measure
    >>> out = os.path.join(tempfile.mkdtemp(), "m.csv")
    >>> df = measure("nb201", out, designs=[[1] * 6, [0] * 6], warmup=1, repeats=2,
    ...              device_name="here", progress=False)
    >>> df["status"].tolist(), bool((df["latency_ms"] > 0).all())
    (['ok', 'ok'], True)
    """
    space = get_space(space)
    threads, repeats, rounds = _positive(threads=threads, repeats=repeats, rounds=rounds)
    warmup = _non_negative(warmup=warmup)
    if quantize is not None and quantize not in _models.QUANTIZE_MODES:
        raise ValueError(
            f"quantize must be None or one of {_models.QUANTIZE_MODES}, got {quantize!r}."
        )
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}.")
    target = str(check_device(device, what="device"))
    if cuda_graphs and target == "cpu":
        raise ValueError("cuda_graphs needs a CUDA device (device='cuda').")
    if quantize and target != "cpu":
        raise ValueError("quantize='int8' networks run on the CPU only (PyTorch's int8 "
                         "kernels); use device='cpu'.")
    if not (np.isfinite(energy_seconds) and energy_seconds > 0 and idle_seconds >= 0):
        raise ValueError("energy_seconds must be positive and idle_seconds non-negative.")
    files = None
    if backend == "onnxruntime":
        if models is None:
            raise ValueError("backend='onnxruntime' needs models: the folder skedge export wrote.")
        if designs is not None or n is not None or include_reference:
            raise ValueError("with backend='onnxruntime' the designs are the exported ones; "
                             "give no designs, n or include_reference.")
        if target != "cpu" or quantize:
            raise ValueError("backend='onnxruntime' times float models on this CPU only.")
        X, ranks, ids, files, batch_size = _onnx_designs(
            space, models, None if batch_size == 1 else batch_size)
    else:
        (batch_size,) = _positive(batch_size=batch_size)
        X, ranks, ids = select_designs(space, designs=designs, n=n,
                                       include_reference=include_reference,
                                       random_state=random_state, data_home=data_home)
    if backend == "onnxruntime":
        optional_import("onnxruntime", "timing ONNX models (--backend onnxruntime)")
    device_name, features, context = device_context(
        threads=threads, batch_size=batch_size, quantize=quantize, device_name=device_name,
        target=target, backend=backend, cuda_graphs=cuda_graphs,
    )
    counter = open_energy_counter(target, rapl_root=rapl_root) if energy else None
    header, existing = _prepare_file(out, space, resume=resume)
    settings = {"threads": threads, "batch_size": batch_size, "quantize": quantize or "",
                "backend": backend, "target": target, "cuda_graphs": int(bool(cuda_graphs))}
    done = _done_keys(existing, space, device_name, settings, out)
    base = {"device": device_name, "space": _space_key(space), "warmup": warmup,
            **settings, **features, **context}
    _check_header_holds(header, {**base, "round": rounds,
                                 "energy_mj": 1.0 if energy else None}, out)
    todo = [(k, i) for k in range(1, rounds + 1) for i in range(len(X))
            if (tuple(X[i]), k) not in done]
    if progress and done:
        print(f"skedge measure: {out} already holds {len(X) * rounds - len(todo)} of these "
              f"{len(X) * rounds} (design, round) pairs for {device_name!r}; measuring "
              f"{len(todo)}.", file=sys.stderr)
    if counter is not None and todo:
        idle_w, resolution, update_ms = idle_baseline(counter, idle_seconds)
        base.update(energy_counter=counter.name, energy_resolution_mj=resolution,
                    idle_power_w=idle_w)
        if progress:
            print(f"skedge measure: {counter.name} idle {idle_w:.2f} W, resolution "
                  f"{resolution:.4g} mJ, updates every {update_ms:.3g} ms", file=sys.stderr)

    out = Path(out)
    write_header = not out.exists() or out.stat().st_size == 0
    with open(out, "a", encoding="utf-8", newline="") as f:
        if write_header:
            _append_line(f, header, {c: c for c in header})
        for step, (k, i) in enumerate(todo, start=1):
            x = X[i]
            row = {**base, **{c: int(v) for c, v in zip(space.choice_names, x)},
                   "design_str": space.to_string(x), "design_id": ids[i],
                   "reference_rank": ranks[i], "round": k, "loadavg": _loadavg()}
            try:
                if files is not None:
                    run, _ = onnx_runner(files[i], threads=threads)
                    runner = contextlib.nullcontext((run, None))
                else:
                    runner = torch_runner(_models.build_model(space, x, quantize=quantize),
                                          batch_size=batch_size, device=target,
                                          cuda_graphs=cuda_graphs)
                with runner as (run, sync):
                    times = time_runs(run, warmup=warmup, repeats=repeats, threads=threads)
                    q1, med, q3 = np.percentile(times, [25, 50, 75])
                    if counter is not None:
                        row["energy_mj"], row["energy_runs"] = energy_per_run(
                            run, counter, seconds=energy_seconds, latency_ms=med, sync=sync)
                row.update(
                    latency_ms=med, latency_mean_ms=times.mean(),
                    latency_std_ms=times.std(ddof=1) if len(times) > 1 else 0.0,
                    latency_iqr_ms=q3 - q1, latency_min_ms=times.min(), n_runs=len(times),
                    status="ok", error="",
                )
                msg = f"{med:.3f} ms (IQR {q3 - q1:.3f})"
                if counter is not None:
                    msg += f" {row['energy_mj']:.3f} mJ"
            except Exception as exc:  # noqa: BLE001 - any failure is recorded, the run goes on
                reason = f"{type(exc).__name__}: {exc}".replace("\r", " ").replace("\n", " ")
                row.update(n_runs=0, status="failed", error=reason[:500])
                msg = "FAILED " + reason[:120]
            row["timestamp"] = datetime.now(UTC).isoformat(timespec="seconds")
            _append_line(f, header, row)
            if progress:
                tag = f" r{k}" if rounds > 1 else ""
                print(f"[{step}/{len(todo)}] {device_name}{tag} {msg}  {row['design_str'][:70]}",
                      file=sys.stderr, flush=True)
    return read_measurement_file(out)


def repeatability(frame):
    """How repeatable each device setting's latencies are.

    Parameters
    ----------
    frame : pandas.DataFrame
        A measurement file (:func:`read_measurement_file`).

    Returns
    -------
    table : pandas.DataFrame
        One row per device setting: ``n_designs``, ``median_latency_ms``,
        ``median_rel_iqr`` (median over designs of IQR / median across
        repeats), and with two or more rounds ``round_spearman`` (rank
        correlation of the designs' latencies in rounds 1 and 2) and
        ``round_rel_diff`` (median of \\|r1 - r2\\| / mean); NaN otherwise.

    Examples
    --------
    >>> import os, tempfile
    >>> from skedge.measure import measure, repeatability
    >>> out = os.path.join(tempfile.mkdtemp(), "m.csv")
    >>> df = measure("nb201", out, designs=[[1] * 6, [3] * 6], warmup=0, repeats=3,
    ...              rounds=2, device_name="here", progress=False)
    >>> int(repeatability(df).loc["here", "n_designs"])
    2
    """
    ok = frame[frame["status"] == "ok"]
    rows = {}
    for name, g in ok.groupby("device", sort=False):
        rel_iqr = (g["latency_iqr_ms"] / g["latency_ms"]).median()
        by_round = g.pivot_table(index="design_str", columns="round", values="latency_ms")
        rho = diff = np.nan
        if by_round.shape[1] >= 2:
            pair = by_round.iloc[:, :2].dropna()
            if len(pair) >= 2:
                rho = pair.iloc[:, 0].corr(pair.iloc[:, 1], method="spearman")
            diff = ((pair.iloc[:, 0] - pair.iloc[:, 1]).abs() / pair.mean(axis=1)).median()
        rows[name] = {"n_designs": g["design_str"].nunique(),
                      "median_latency_ms": g["latency_ms"].median(),
                      "median_rel_iqr": rel_iqr, "round_spearman": rho, "round_rel_diff": diff}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "device"
    return table
