"""The measurement-file format: columns, reading, checking and appending rows.

A measurement file is a plain CSV, one row per (device setting, design, round),
written one whole line at a time and synced to disk (see :mod:`skedge.measure`).
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ..devices import DEVICE_FEATURES
from ..spaces import get_space

__all__ = ["measurement_columns", "read_measurement_file"]

_TIMING_COLUMNS = (
    "latency_ms",  # median
    "latency_mean_ms",
    "latency_std_ms",
    "latency_iqr_ms",
    "latency_min_ms",
    "n_runs",
    "warmup",
    "threads",
    "quantize",
    "status",
    "error",
)
#: Columns added with GPU, energy and ONNX profiling. Files written before
#: them are still read (the values take their defaults, :data:`_DEFAULTS`).
_PROFILE_COLUMNS = (
    "backend",  # torch, onnxruntime or external (imported timings)
    "target",  # cpu or cuda:N
    "cuda_graphs",
    "round",
    "energy_mj",  # energy per inference, from a hardware counter
    "energy_runs",
    "energy_counter",
    "energy_resolution_mj",
    "idle_power_w",
)
_CONTEXT_COLUMNS = (
    "cpu_model",
    "machine",
    "governor",
    "omp_env",
    "torch_version",
    "skedge_version",
    "loadavg",
    "timestamp",
)
_GPU_CONTEXT_COLUMNS = ("gpu_name", "driver_version", "cuda_version", "backend_version")
_DEFAULTS = {"backend": "torch", "target": "cpu", "cuda_graphs": 0, "round": 1}
_STR_COLUMNS = ("device", "space", "design_str", "status", "error", "quantize", "cpu_model",
                "governor", "omp_env", "kind", "backend", "target", "energy_counter",
                "gpu_name", "driver_version", "cuda_version", "backend_version")


def measurement_columns(space):
    """Columns of a measurement CSV of ``space``, in file order.

    ``device, space, <design columns>, design_str, design_id, reference_rank``;
    the timing columns: ``latency_ms`` (the median), ``latency_mean_ms``,
    ``latency_std_ms``, ``latency_iqr_ms``, ``latency_min_ms``, ``n_runs``,
    ``warmup``, ``threads``, ``quantize``, ``status`` (``ok`` / ``failed``) and
    ``error``; the profiling columns: ``backend`` (``torch``, ``onnxruntime``
    or ``external``), ``target`` (``cpu`` or ``cuda:N``), ``cuda_graphs``,
    ``round`` (pass over the design list, from 1), ``energy_mj`` (energy per
    inference), ``energy_runs``, ``energy_counter``, ``energy_resolution_mj``
    and ``idle_power_w``; the :data:`~skedge.devices.DEVICE_FEATURES`
    (``batch_size`` among them); the context: ``cpu_model``, ``machine``,
    ``governor`` (CPU frequency governor), ``omp_env`` (OpenMP/MKL threading
    variables that were set), ``torch_version``, ``skedge_version``,
    ``loadavg`` (1-minute load average just before the design was timed),
    ``timestamp`` (UTC), ``gpu_name``, ``driver_version``, ``cuda_version``
    and ``backend_version`` (e.g. onnxruntime's).

    Examples
    --------
    >>> from skedge.measure import measurement_columns
    >>> measurement_columns("nb201")[:9]
    ['device', 'space', 'e0', 'e1', 'e2', 'e3', 'e4', 'e5', 'design_str']
    """
    space = get_space(space)
    return (
        ["device", "space"]
        + list(space.choice_names)
        + ["design_str", "design_id", "reference_rank"]
        + list(_TIMING_COLUMNS)
        + list(_PROFILE_COLUMNS)
        + list(DEVICE_FEATURES)
        + list(_CONTEXT_COLUMNS)
        + list(_GPU_CONTEXT_COLUMNS)
    )


def _core_columns(space):
    """The columns every measurement file has, also those written before profiling."""
    optional = set(_PROFILE_COLUMNS) | set(_GPU_CONTEXT_COLUMNS)
    return [c for c in measurement_columns(space) if c not in optional]


def _space_key(space):
    return "ofa-quant" if getattr(space, "quantize", False) else space.name


def _repair_text(text):
    """Drop a torn last line (a kill mid-write leaves a line without its newline)."""
    if text and not text.endswith("\n"):
        cut = text.rfind("\n")
        return text[: cut + 1] if cut >= 0 else "", True
    return text, False


def _check_rows(text, path):
    """Every line must have the header's number of fields: a torn row is an error."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        return
    for fields in reader:
        if fields and len(fields) != len(header):
            raise ValueError(
                f"{path}, line {reader.line_num}: {len(fields)} fields where the header has "
                f"{len(header)}; the row is torn (two runs writing one file, or a file edited "
                "or cut by hand). Remove or repair that line."
            )


def _parse(text, path, dtype):
    _check_rows(text, path)
    frame = pd.read_csv(io.StringIO(text), dtype=dtype, keep_default_na=False, na_values=[""])
    for col, default in _DEFAULTS.items():
        if col not in frame.columns:
            frame[col] = default
    # One block per column (an OFA file has over 100): consolidate, or every later
    # column added to the frame makes pandas warn the user about fragmentation.
    return frame.copy()


def read_measurement_file(path):
    """Read a measurement CSV, ignoring a torn last line.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`~skedge.measure.measure` (``skedge measure``)
        or :func:`~skedge.measure.import_timings`, or such a file compressed
        with gzip (``.gz``).

    Returns
    -------
    frame : pandas.DataFrame
        One row per measured (device, design, round), columns as
        :func:`measurement_columns` (a file written before the profiling
        columns gets ``backend="torch"``, ``target="cpu"``, ``round=1``);
        ``frame.attrs["torn"]`` says whether an incomplete last line was
        dropped.

    Raises
    ------
    ValueError
        For an empty file, or a torn row in the middle of the file (the
        message names the line).

    Examples
    --------
    >>> import os, tempfile
    >>> from skedge.measure import measure, read_measurement_file
    >>> out = os.path.join(tempfile.mkdtemp(), "m.csv")
    >>> _ = measure("nb201", out, designs=[[1] * 6], warmup=0, repeats=1, progress=False)
    >>> read_measurement_file(out)[["backend", "target", "round"]].values.tolist()
    [['torch', 'cpu', 1]]
    """
    path = Path(path)
    if path.suffix == ".gz":  # a finished file, compressed to ship it (gzip -k m.csv)
        with gzip.open(path, "rt", encoding="utf-8") as f:
            raw = f.read()
    else:
        raw = path.read_text(encoding="utf-8")
    text, torn = _repair_text(raw)
    if not text.strip():
        raise ValueError(f"measurement file {path} is empty.")
    dtype = {c: str for c in _STR_COLUMNS}
    frame = _parse(text, path, dtype)
    frame.attrs["torn"] = torn
    frame.attrs["path"] = str(path)
    return frame


def _check_columns(frame, space, path):
    missing = [c for c in _core_columns(space) if c not in frame.columns]
    if "space" in frame.columns and len(frame):
        other = sorted(set(frame["space"].astype(str)) - {_space_key(space)})
        if other:
            raise ValueError(
                f"{path} holds measurements of space {other[0]!r}, not {_space_key(space)!r}; "
                "write to another file."
            )
    if missing:
        raise ValueError(
            f"{path} lacks the measurement columns {missing[:6]}"
            f"{' ...' if len(missing) > 6 else ''}; it is not a skedge measurement file of "
            f"{_space_key(space)!r}."
        )


def _prepare_file(out, space, *, resume, tool="skedge measure"):
    """Validate or repair the output file; return (header, rows already in the file)."""
    out = Path(out)
    if out.suffix == ".gz":
        raise ValueError(f"{out}: measurements are written as plain CSV, row by row (a killed "
                         "run loses nothing); compress the file once it is finished.")
    columns = measurement_columns(space)
    if not out.exists() or out.stat().st_size == 0:
        return columns, None
    if not resume:
        raise ValueError(
            f"{out} already exists; pass resume=True (--resume) to skip the designs it "
            "holds and add the rest (or another device setting), or choose another file."
        )
    data = out.read_bytes()
    # Work on bytes so that the truncation offset is exact.
    keep = data[: data.rfind(b"\n") + 1]
    torn = len(keep) < len(data)
    repaired = keep.decode("utf-8", errors="replace")
    partial = data.decode("utf-8", errors="replace").strip()
    if not repaired.strip() and not ",".join(columns).startswith(partial):
        raise ValueError(f"{out} is not a skedge measurement file (no header line).")
    header = next(csv.reader([repaired.splitlines()[0]])) if repaired.strip() else None
    frame = None
    if header is not None:
        frame = _parse(repaired, out, str)
        _check_columns(frame, space, out)
    if torn:
        # Truncate in place only after the checks passed: a foreign file is never touched.
        with open(out, "r+b") as f:
            f.truncate(len(keep))
            f.flush()
            os.fsync(f.fileno())
        print(f"{tool}: dropped an incomplete last line of {out}", file=sys.stderr)
    if header is None:
        return columns, None
    return header, frame


def _check_header_holds(header, row, path):
    """Refuse to drop values that an older file's header has no column for."""
    lost = [c for c in row if c not in header and c in _PROFILE_COLUMNS
            and _cell(row[c]) not in ("", _DEFAULTS.get(c))]
    if lost:
        raise ValueError(
            f"{path} was written by an older skedge without the columns {lost}; "
            "measure this setting into a new file."
        )


def _append_line(f, header, row):
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([_cell(row.get(c)) for c in header])
    # One write per row, then flush and fsync: a kill leaves whole rows plus at
    # most one torn line, which the next resume drops.
    f.write(buf.getvalue())
    f.flush()
    os.fsync(f.fileno())


def _cell(v):
    if v is None:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return "" if not np.isfinite(v) else repr(round(float(v), 6))
    if isinstance(v, (np.integer,)):
        return int(v)
    return v
