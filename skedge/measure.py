"""Measure the latency of designs on this machine: ``skedge measure``.

The protocol: build each design's network (:func:`skedge.models.build_model`),
run ``warmup`` untimed and ``repeats`` timed inferences of one random batch
under :func:`torch.inference_mode` with a fixed thread count, and record the
median and the spread. Each finished design becomes one CSV row, written in a
single ``write`` and flushed to disk (``os.fsync``) before the next design
starts, so a run killed at any moment loses at most the design in progress;
``resume=True`` repairs a torn last line and skips what the file holds.

Every row carries the device's feature row (:data:`~skedge.devices.DEVICE_FEATURES`,
from :func:`~skedge.devices.describe_local_device`) and the conditions of the
measurement (threads, batch size, load average, CPU governor, versions), so
one file copied back from a phone or a board is self-contained:
:func:`skedge.datasets.load_measurements` turns it into a benchmark.
"""

from __future__ import annotations

import csv
import gc
import io
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from .devices import DEVICE_FEATURES, DEVICE_KINDS, describe_local_device
from .spaces import get_space

__all__ = [
    "time_model",
    "measure",
    "read_measurement_file",
    "read_designs_file",
    "measurement_columns",
    "register",
]

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


def measurement_columns(space):
    """Columns of a measurement CSV of ``space``, in file order.

    ``device, space, <design columns>, design_str, design_id, reference_rank``;
    the timing columns: ``latency_ms`` (the median), ``latency_mean_ms``,
    ``latency_std_ms``, ``latency_iqr_ms``, ``latency_min_ms``, ``n_runs``,
    ``warmup``, ``threads``, ``quantize``, ``status`` (``ok`` / ``failed``) and
    ``error``; the :data:`~skedge.devices.DEVICE_FEATURES` (``batch_size``
    among them); the context: ``cpu_model``, ``machine``, ``governor`` (CPU
    frequency governor), ``omp_env`` (OpenMP/MKL threading variables that were
    set), ``torch_version``, ``skedge_version``, ``loadavg`` (1-minute load
    average just before the design was timed) and ``timestamp`` (UTC).

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
        + list(DEVICE_FEATURES)
        + list(_CONTEXT_COLUMNS)
    )


def _space_key(space):
    return "ofa-quant" if getattr(space, "quantize", False) else space.name


# ------------------------------------------------------------------ timing
def time_model(model, *, batch_size=1, warmup=5, repeats=20, threads=None, input_shape=None,
               random_state=0):
    """Time the inference of one model on this CPU.

    Parameters
    ----------
    model : torch.nn.Module
        The network, e.g. from :func:`skedge.models.build_model`; put in eval mode.
    batch_size : int, default=1
        Images per inference.
    warmup : int, default=5
        Untimed runs first (allocator, caches, lazy initialisation).
    repeats : int, default=20
        Timed runs.
    threads : int, default=None
        ``torch.set_num_threads`` for the duration of the call (restored
        afterwards); None keeps the current setting.
    input_shape : tuple of int, default=None
        ``(C, H, W)`` of one image; default ``model.input_shape``.
    random_state : int, default=0
        Seed of the random input batch.

    Returns
    -------
    times_ms : ndarray of shape (repeats,)
        Wall-clock milliseconds of each timed run.

    Examples
    --------
    >>> from skedge.measure import time_model
    >>> from skedge.models import build_model
    >>> times = time_model(build_model("nb201", [1] * 6), warmup=1, repeats=3, threads=1)
    >>> times.shape, bool((times > 0).all())
    ((3,), True)
    """
    import torch

    batch_size, repeats = _positive(batch_size=batch_size, repeats=repeats)
    warmup = _non_negative(warmup=warmup)
    shape = tuple(input_shape or model.input_shape)
    generator = torch.Generator().manual_seed(int(random_state))
    x = torch.randn(batch_size, *shape, generator=generator)
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(_positive(threads=threads)[0])
    model.eval()
    times = np.empty(repeats, dtype=np.float64)
    gc_was_enabled = gc.isenabled()
    try:
        with torch.inference_mode():
            for _ in range(warmup):
                model(x)
            gc.collect()
            # A collection pause inside a timed run would be measured as latency.
            gc.disable()
            for i in range(repeats):
                start = time.perf_counter_ns()
                model(x)
                times[i] = (time.perf_counter_ns() - start) / 1e6
    finally:
        if gc_was_enabled:
            gc.enable()
        torch.set_num_threads(previous)
    return times


def _positive(**kwargs):
    out = []
    for name, v in kwargs.items():
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}.")
        out.append(int(v))
    return tuple(out)


def _non_negative(**kwargs):
    ((name, v),) = kwargs.items()
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {v!r}.")
    return int(v)


# ------------------------------------------------------------- file handling
def _repair_text(text):
    """Drop a torn last line (a kill mid-write leaves a line without its newline)."""
    if text and not text.endswith("\n"):
        cut = text.rfind("\n")
        return text[: cut + 1] if cut >= 0 else "", True
    return text, False


def read_measurement_file(path):
    """Read a measurement CSV, ignoring a torn last line.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`measure` (``skedge measure``).

    Returns
    -------
    frame : pandas.DataFrame
        One row per measured (device, design), columns as
        :func:`measurement_columns`; ``frame.attrs["torn"]`` says whether an
        incomplete last line was dropped.
    """
    path = Path(path)
    text, torn = _repair_text(path.read_text(encoding="utf-8"))
    if not text.strip():
        raise ValueError(f"measurement file {path} is empty.")
    frame = pd.read_csv(
        io.StringIO(text),
        dtype={"device": str, "space": str, "design_str": str, "status": str, "error": str,
               "quantize": str, "cpu_model": str, "governor": str, "omp_env": str,
               "kind": str},
        keep_default_na=False,
        na_values=[""],
    )
    frame.attrs["torn"] = torn
    frame.attrs["path"] = str(path)
    return frame


def _check_columns(frame, space, path):
    expected = measurement_columns(space)
    missing = [c for c in expected if c not in frame.columns]
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


def _prepare_file(out, space, *, resume):
    """Validate or repair the output file; return (header, done rows of the file)."""
    out = Path(out)
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
    if header is None:
        frame = None
    else:
        frame = pd.read_csv(io.StringIO(repaired), dtype=str, keep_default_na=False,
                            na_values=[""])
        _check_columns(frame, space, out)
    if torn:
        # Truncate in place only after the checks passed: a foreign file is never touched.
        with open(out, "r+b") as f:
            f.truncate(len(keep))
            f.flush()
            os.fsync(f.fileno())
        print(f"skedge measure: dropped an incomplete last line of {out}", file=sys.stderr)
    if header is None:
        return columns, None
    return header, frame


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
    if isinstance(v, (float, np.floating)):
        return "" if not np.isfinite(v) else repr(round(float(v), 6))
    if isinstance(v, (np.integer,)):
        return int(v)
    return v


# --------------------------------------------------------------- the context
def _governor():
    try:
        return Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor").read_text().strip()
    except OSError:
        return ""


# Threading variables that change CPU latency (e.g. OMP_WAIT_POLICY=PASSIVE
# avoids spinning threads, which matters a lot on a busy CPU).
_OMP_VARS = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "OMP_PROC_BIND", "GOMP_SPINCOUNT",
             "KMP_BLOCKTIME", "KMP_AFFINITY", "MKL_NUM_THREADS")


def _omp_env():
    return ";".join(f"{k}={os.environ[k]}" for k in _OMP_VARS if os.environ.get(k))


def _loadavg():
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return np.nan


def _device_context(*, threads, batch_size, quantize, device_name):
    row = describe_local_device(threads=threads, batch_size=batch_size)
    if device_name is None:
        device_name = str(row.index[0])
        if quantize:
            device_name += f"_{quantize}"
        if batch_size != 1:
            device_name += f"_{batch_size}"
    device_name = str(device_name).strip()
    if not device_name or "," in device_name or "\n" in device_name:
        raise ValueError(f"device name {device_name!r} must be non-empty, without ',' or newlines.")
    features = row.iloc[0].to_dict()
    features["kind"] = DEVICE_KINDS[int(features["kind"])]
    if quantize == "int8":
        features["precision_bits"] = 8.0
    from . import __version__

    context = {
        "cpu_model": row.attrs.get("cpu_model", ""),
        "machine": row.attrs.get("machine", ""),
        "governor": _governor(),
        "omp_env": _omp_env(),
        "torch_version": row.attrs.get("torch_version", ""),
        "skedge_version": __version__,
    }
    return device_name, features, context


def _design_ids(space, X, data_home):
    """``arch_idx`` of NB201 designs when the data home has the table, else None."""
    if space.name != "nb201":
        return None
    try:
        return space.to_arch_idx(X, data_home=data_home)
    except FileNotFoundError:
        return None


def _unique_rows(X):
    _, first = np.unique(X, axis=0, return_index=True)
    return X[np.sort(first)]


def _sample_unique(space, n, random_state, exclude=None):
    """``n`` distinct designs drawn uniformly, none of them in ``exclude``."""
    from sklearn.utils import check_random_state

    excluded = set() if exclude is None else {tuple(r) for r in np.asarray(exclude)}
    if n > space.size - len(excluded):
        raise ValueError(
            f"n={n} exceeds the {space.size - len(excluded):,} designs of {space!r} that are "
            "not already listed."
        )
    rng = check_random_state(random_state)
    X = np.empty((0, space.n_choices), dtype=np.int64)
    while len(X) < n:
        X = _unique_rows(np.vstack([X, space.sample(n - len(X), random_state=rng)]))
        X = X[[tuple(r) not in excluded for r in X]].reshape(-1, space.n_choices)
    return X[:n]


# --------------------------------------------------------------- the job
def measure(space, out, *, designs=None, n=None, include_reference=False, random_state=None,
            threads=1, batch_size=1, warmup=5, repeats=20, quantize=None, device_name=None,
            resume=False, data_home=None, progress=True):
    """Measure the latency of designs on this machine into a CSV file.

    Everything is checked before the first design is timed: the space, the
    designs, the numeric settings and, when resuming, the existing file
    (same space, all columns, and no other settings recorded under the same
    device name). A design whose network fails to build or run is recorded
    with ``status="failed"`` and its error, and the run goes on.

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
        Intra-op threads (``torch.set_num_threads``; restored afterwards).
    batch_size : int, default=1
        Images per inference.
    warmup, repeats : int, default=5, 20
        Untimed and timed runs per design.
    quantize : {None, "int8"}, default=None
        Time the int8 post-training-quantized network (see
        :func:`skedge.models.build_model`); ``precision_bits`` becomes 8.
    device_name : str, default=None
        Device-setting name (the ``device`` column, a latency column once
        loaded); default ``local_<cpu>_t<threads>`` (+ ``_int8``, + ``_<batch>``).
        Use one name per setting: two thread counts are two settings.
    resume : bool, default=False
        Append to an existing file: repair a torn last line, then skip the
        designs it already holds for this device setting (failed ones too).
    data_home : str or path-like, default=None
        Data home for the reference designs and NB201 ``arch_idx`` values.
    progress : bool, default=True
        Print one line per design to stderr.

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
    from .models import QUANTIZE_MODES, build_model

    space = get_space(space)
    threads, batch_size, repeats = _positive(
        threads=threads, batch_size=batch_size, repeats=repeats
    )
    warmup = _non_negative(warmup=warmup)
    if quantize is not None and quantize not in QUANTIZE_MODES:
        raise ValueError(f"quantize must be None or one of {QUANTIZE_MODES}, got {quantize!r}.")
    if designs is not None and n is not None:
        raise ValueError("give either designs or n (a number of designs to sample), not both.")
    parts, ranks, ids = [], [], []
    if include_reference:
        from .datasets import load_reference_designs

        ref, ref_ids = load_reference_designs(space, data_home=data_home, return_ids=True)
        ref = space.validate(ref, canonicalize=True)
        parts.append(ref)
        ranks += list(range(len(ref)))
        ids += [int(i) for i in ref_ids]
    if designs is not None:
        given = space.validate(designs, canonicalize=True)
        parts.append(given)
    elif n is not None:
        n = _non_negative(n=n)
        parts.append(_sample_unique(space, n, random_state, exclude=parts[0] if parts else None))
    if not parts or sum(len(p) for p in parts) == 0:
        raise ValueError("nothing to measure: give designs, n > 0 or include_reference=True.")
    X = np.vstack(parts)
    n_ref = len(ranks)
    ranks += [None] * (len(X) - n_ref)
    ids += [None] * (len(X) - n_ref)
    nb_ids = _design_ids(space, X, data_home)
    if nb_ids is not None:
        ids = [int(i) for i in nb_ids]
    # Keep the first occurrence of each design (a reference wins over a sampled copy).
    keys = [tuple(r) for r in X]
    seen, order = set(), []
    for i, k in enumerate(keys):
        if k not in seen:
            seen.add(k)
            order.append(i)

    device_name, features, context = _device_context(
        threads=threads, batch_size=batch_size, quantize=quantize, device_name=device_name
    )
    header, existing = _prepare_file(out, space, resume=resume)
    done = set()
    if existing is not None and len(existing):
        mine = existing[existing["device"] == device_name]
        settings = {"threads": threads, "batch_size": batch_size, "quantize": quantize or ""}
        for col, want in settings.items():
            if col == "quantize":
                got = set(mine[col].fillna("").astype(str)) - {want}
            else:
                values = pd.to_numeric(mine[col], errors="coerce")
                got = set(mine[col][values != want].astype(str))
            if got:
                raise ValueError(
                    f"{out} holds device setting {device_name!r} measured with {col}="
                    f"{sorted(got)[0]}, not {want}; use another device name for another setting."
                )
        if len(mine):
            values = mine[list(space.choice_names)].apply(pd.to_numeric, errors="coerce")
            try:
                held = space.validate(values.to_numpy(np.float64), canonicalize=True)
            except ValueError as exc:
                raise ValueError(f"{out} holds a design outside {space!r}: {exc}") from None
            done = {tuple(r) for r in held}
    todo = [i for i in order if keys[i] not in done]
    if progress and done:
        print(f"skedge measure: {out} already holds {len(order) - len(todo)} of these "
              f"{len(order)} designs for {device_name!r}; measuring {len(todo)}.", file=sys.stderr)

    out = Path(out)
    write_header = not out.exists() or out.stat().st_size == 0
    with open(out, "a", encoding="utf-8", newline="") as f:
        if write_header:
            _append_line(f, header, {c: c for c in header})
        for step, i in enumerate(todo, start=1):
            x = X[i]
            row = {
                "device": device_name, "space": _space_key(space),
                **{c: int(v) for c, v in zip(space.choice_names, x)},
                "design_str": space.to_string(x),
                "design_id": ids[i], "reference_rank": ranks[i],
                "warmup": warmup, "threads": threads,
                "quantize": quantize or "", **features, **context,
                "loadavg": _loadavg(),
            }
            try:
                model = build_model(space, x, quantize=quantize)
                times = time_model(model, batch_size=batch_size, warmup=warmup,
                                   repeats=repeats, threads=threads)
                q1, med, q3 = np.percentile(times, [25, 50, 75])
                row.update(
                    latency_ms=med, latency_mean_ms=times.mean(),
                    latency_std_ms=times.std(ddof=1) if len(times) > 1 else 0.0,
                    latency_iqr_ms=q3 - q1, latency_min_ms=times.min(), n_runs=len(times),
                    status="ok", error="",
                )
                msg = f"{med:.3f} ms (IQR {q3 - q1:.3f})"
            except Exception as exc:  # noqa: BLE001 - any failure is recorded, the run goes on
                reason = f"{type(exc).__name__}: {exc}".replace("\r", " ").replace("\n", " ")
                row.update(n_runs=0, status="failed", error=reason[:500])
                msg = "FAILED " + reason[:120]
            row["timestamp"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            _append_line(f, header, row)
            if progress:
                print(f"[{step}/{len(todo)}] {device_name} {msg}  {row['design_str'][:70]}",
                      file=sys.stderr, flush=True)
    return read_measurement_file(out)


# ------------------------------------------------------------------ designs file
def read_designs_file(path, space, *, data_home=None):
    """Designs listed in a file, as option indices.

    Accepted forms: a CSV with the space's design columns (option indices, or
    option values as in the HELP tables, e.g. ``ks0=7``), a CSV with a
    ``design_str`` or ``arch_str`` column, an NB201 CSV with only an
    ``arch_idx`` column (needs the data home), or a text file with one design
    string per line.
    """
    space = get_space(space)
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise ValueError(f"designs file {path} is empty.")
    first = next(csv.reader([lines[0]]))
    names = set(space.choice_names)
    if names <= set(first):
        df = pd.read_csv(path)
        block = df[list(space.choice_names)]
        try:
            return space.validate(block.to_numpy(), canonicalize=True)
        except ValueError as as_index:
            try:
                return space.from_dicts(block.to_dict("records"))
            except ValueError:
                raise ValueError(
                    f"{path}: the design columns are neither option indices nor option "
                    f"values of {space!r}: {as_index}"
                ) from None
    for col in ("design_str", "arch_str"):
        if col in first:
            df = pd.read_csv(path, dtype={col: str})
            return space.from_strings(df[col].tolist())
    if first == ["arch_idx"] and space.name == "nb201":
        df = pd.read_csv(path)
        return space.from_arch_idx(df["arch_idx"].to_numpy(), data_home=data_home)
    try:
        return space.from_strings([ln.strip() for ln in lines])
    except ValueError as exc:
        raise ValueError(
            f"cannot read designs from {path}: it has none of the columns "
            f"{space.choice_names[:3]}..., design_str, arch_str, and its lines are not "
            f"{space.name} design strings ({exc})."
        ) from None


# ------------------------------------------------------------------ the CLI
def register(subparsers):
    """Add the ``measure`` sub-command to the ``skedge`` parser."""
    p = subparsers.add_parser(
        "measure",
        help="time designs on this machine into a resumable CSV",
        description=(
            "Build the network of each design and time its inference on this CPU "
            "(torch.inference_mode, warm-up runs, then repeated timed runs). One CSV row "
            "per design, flushed as it finishes; --resume continues a killed run."
        ),
    )
    p.add_argument("--space", required=True, help="nb201, fbnet, ofa or ofa-quant")
    p.add_argument("--n", type=int, default=None, help="number of designs to sample")
    p.add_argument("--designs", default=None, metavar="FILE",
                   help="CSV with design columns or design strings, or one string per line")
    p.add_argument("--out", required=True, help="output CSV file")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--quantize", choices=["int8"], default=None,
                   help="time the int8 post-training-quantized networks")
    p.add_argument("--resume", action="store_true",
                   help="append to an existing file, skipping designs it holds")
    p.add_argument("--random-state", type=int, default=0)
    p.add_argument("--include-reference", action="store_true",
                   help="also measure the space's 10 reference designs (needs the data home)")
    p.add_argument("--data-home", default=None, help="folder of the real data (SKEDGE_DATA)")
    p.add_argument("--device-name", default=None,
                   help="device-setting name; default local_<cpu>_t<threads>")
    p.add_argument("--quiet", action="store_true", help="no per-design progress lines")
    p.set_defaults(func=_run)


def _run(args):
    space = get_space(args.space)
    designs = None
    if args.designs is not None:
        designs = read_designs_file(args.designs, space, data_home=args.data_home)
    frame = measure(
        space, args.out, designs=designs, n=args.n, include_reference=args.include_reference,
        random_state=args.random_state, threads=args.threads, batch_size=args.batch_size,
        warmup=args.warmup, repeats=args.repeats, quantize=args.quantize,
        device_name=args.device_name, resume=args.resume, data_home=args.data_home,
        progress=not args.quiet,
    )
    ok = frame[frame["status"] == "ok"]
    for device, rows in frame.groupby("device", sort=False):
        good = rows[rows["status"] == "ok"]["latency_ms"]
        span = f", {good.min():.3f}..{good.max():.3f} ms" if len(good) else ""
        print(f"{device}: {len(good)} ok, {len(rows) - len(good)} failed{span}")
    print(f"wrote {args.out} ({len(frame)} rows, {len(ok)} ok)")
    return 0
