"""Device features: the schema, its validation, and describing this machine.

Reading device files lives in :mod:`skedge.datasets` (:func:`~skedge.datasets.load_devices`,
:func:`~skedge.datasets.read_device_file`); comparing devices in the encoded feature space
in :mod:`skedge.preprocessing` (:func:`~skedge.preprocessing.nearest_devices`).

A device *setting* (one piece of hardware at one batch size and precision) is
described by one numeric row. ``kind`` is stored as its index in
:data:`DEVICE_KINDS` so the whole row is numeric; unknown values are NaN and are
never filled in by guesswork here (the predictors impute them, see
:class:`skedge.preprocessing.DeviceFeatureEncoder`).
"""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ._checks import numeric_column

__all__ = [
    "DEVICE_KINDS",
    "DEVICE_FEATURES",
    "FEATURE_BOUNDS",
    "validate_device_table",
    "describe_local_device",
    "hardware_name",
    "hardware_groups",
]

#: Device families; the ``kind`` feature is the index into this tuple.
DEVICE_KINDS = (
    "phone_cpu",
    "phone_gpu",
    "phone_dsp",
    "npu",
    "edge_gpu",
    "board_cpu",
    "desktop_cpu",
    "server_cpu",
    "desktop_gpu",
    "datacenter_gpu",
    "fpga",
    "asic",
)

#: Numeric device feature columns, in the order every skedge table uses.
DEVICE_FEATURES = (
    "kind",
    "batch_size",
    "precision_bits",
    "peak_gflops",
    "mem_bandwidth_gbs",
    "compute_units",
    "clock_ghz",
    "on_chip_mb",
    "mem_gb",
    "tdp_w",
    "process_nm",
    "release_year",
)

#: Physically possible values of each numeric feature, ``(low, high, low_inclusive)``:
#: a value outside is a typo or a unit mix-up (``peak_gflops = -300``,
#: ``clock_ghz = 2800``), never a device. Far wider than any real device: what
#: merely lies far from the training devices is warned about when predicting
#: (:class:`~skedge.preprocessing.DeviceFeatureEncoder`), not refused.
FEATURE_BOUNDS = {
    "batch_size": (1, 1e6, True),
    "precision_bits": (1, 64, True),
    "peak_gflops": (0, 1e8, False),
    "mem_bandwidth_gbs": (0, 1e6, False),
    "compute_units": (1, 1e7, True),
    "clock_ghz": (0, 10, False),
    "on_chip_mb": (0, 1e5, True),
    "mem_gb": (0, 1e5, False),
    "tdp_w": (0, 1e5, False),
    "process_nm": (0, 1000, False),
    "release_year": (1970, 2100, True),
}
_WHOLE = ("batch_size", "precision_bits", "compute_units", "release_year")

_BATCH_SUFFIX = re.compile(r"_(\d+)$")
_THREADS_SUFFIX = re.compile(r"_t\d+$")


def hardware_name(setting):
    """Name of the hardware behind a device setting: ``'1080ti_32'`` -> ``'1080ti'``.

    Settings that differ only in their batch-size suffix (``_1``, ``_32``, ...)
    or thread-count suffix (``_t1``, ``_t2``, as ``skedge measure`` names
    them) share hardware and must be held out together when a device is
    evaluated as unseen.

    Examples
    --------
    >>> from skedge.devices import hardware_name
    >>> hardware_name("titanxp_256"), hardware_name("pixel3"), hardware_name("true_a76")
    ('titanxp', 'pixel3', 'true_a76')
    >>> hardware_name("local_t2")
    'local'
    """
    m = _THREADS_SUFFIX.search(setting)
    if m:
        return setting[: m.start()]
    m = _BATCH_SUFFIX.search(setting)
    if m and int(m.group(1)) in (1, 32, 64, 128, 256):
        return setting[: m.start()]
    return setting


def hardware_groups(table):
    """Group device settings that run on the same hardware.

    Two settings share hardware when their names differ only in a batch-size
    suffix (``1080ti_1``, ``1080ti_32``) or when their feature rows are identical
    apart from ``batch_size`` (``pixel3`` and ``rice_pixel3``; ``eagle_gtx`` and
    ``1080ti_1``). An unseen-device evaluation must hold out a whole group.

    Parameters
    ----------
    table : pandas.DataFrame
        Device features indexed by setting name (e.g. :func:`load_devices`).

    Returns
    -------
    groups : dict
        ``{setting name: group label}``; the label is the group's first name in
        sorted order.

    Examples
    --------
    >>> import pandas as pd
    >>> from skedge.devices import DEVICE_FEATURES, hardware_groups
    >>> t = pd.DataFrame([[1.0] * 12, [1.0] * 12, [2.0] * 12], columns=DEVICE_FEATURES,
    ...                  index=["gpu_1", "gpu_32", "phone"])
    >>> hardware_groups(t)
    {'gpu_1': 'gpu_1', 'gpu_32': 'gpu_1', 'phone': 'phone'}
    """
    names = sorted(map(str, table.index))
    parent = {n: n for n in names}

    def find(n):
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    def union(a, b):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    by_key = {}
    spec_cols = [c for c in DEVICE_FEATURES if c != "batch_size" and c in table.columns]
    for name in names:
        row = table.loc[name, spec_cols].to_numpy(dtype=np.float64)
        spec_key = tuple("nan" if np.isnan(v) else round(float(v), 9) for v in row)
        for key in (("name", hardware_name(name)), ("spec", spec_key)):
            if key in by_key:
                union(name, by_key[key])
            else:
                by_key[key] = name
    return {n: find(n) for n in names}


def validate_device_table(df, *, source="device table"):
    """Check a device feature table and return it numeric, indexed by ``device``.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per device setting with a ``device`` column (or index) and the
        :data:`DEVICE_FEATURES` columns; ``kind`` may be a name from
        :data:`DEVICE_KINDS` or its index.
    source : str
        Where the table came from, for error messages.

    Returns
    -------
    table : pandas.DataFrame
        Float columns :data:`DEVICE_FEATURES`, index ``device``.
    """
    df = df.copy()
    if "device" in df.columns:
        df = df.set_index("device")
    df.index = df.index.astype(str)
    df.index.name = "device"
    missing = [c for c in DEVICE_FEATURES if c not in df.columns]
    if missing:
        raise ValueError(f"{source} lacks the device feature columns {missing}.")
    if df.index.duplicated().any():
        raise ValueError(f"{source} lists device {df.index[df.index.duplicated()][0]!r} twice.")
    kind = df["kind"]
    if kind.dtype == object or pd.api.types.is_string_dtype(kind):
        # Names and codes may be mixed (e.g. JSON rows written by different tools).
        codes = pd.to_numeric(kind, errors="coerce")
        names = kind[codes.isna() & kind.notna()].astype(str)
        unknown = sorted(set(names) - set(DEVICE_KINDS))
        if unknown:
            raise ValueError(
                f"{source}: unknown device kind {unknown[0]!r}; known kinds are {DEVICE_KINDS}."
            )
        df["kind"] = codes.fillna(names.map({k: i for i, k in enumerate(DEVICE_KINDS)}))
    out = pd.DataFrame({c: numeric_column(df[c], c, source) for c in DEVICE_FEATURES},
                       index=df.index)
    _check_bounds(out, source)
    bad_kind = out["kind"].dropna()
    bad_kind = bad_kind[(bad_kind < 0) | (bad_kind >= len(DEVICE_KINDS)) | (bad_kind % 1 != 0)]
    if len(bad_kind):
        raise ValueError(f"{source}: device {bad_kind.index[0]!r} has an invalid kind code.")
    return out


def _check_bounds(table, source):
    """Refuse physically impossible feature values (negative, zero, absurdly large)."""
    for field, (low, high, closed) in FEATURE_BOUNDS.items():
        col = table[field]
        ok = col.isna() | (((col >= low) if closed else (col > low)) & (col <= high))
        if field in _WHOLE:
            ok &= col.isna() | (col % 1 == 0)
        if not ok.all():
            device = col.index[~ok.to_numpy()][0]
            what = "a whole number " if field in _WHOLE else ""
            raise ValueError(
                f"{source}: device {device!r} has {field} = {col[device]:g}; expected "
                f"{what}{'>=' if closed else '>'} {low:g} and <= {high:g}. Check the value "
                "and its unit, or leave it empty / null when unknown."
            )


# ----------------------------------------------------------------- this machine
def _read(path):
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _cpu_model():
    for line in _read("/proc/cpuinfo").splitlines():
        if line.lower().startswith(("model name", "hardware", "processor\t: ")) and ":" in line:
            value = line.split(":", 1)[1].strip()
            if value and not value.isdigit():
                return value
    return platform.processor() or platform.machine()


def _cpu_flags():
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    return set()


def _clock_ghz():
    khz = _read("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").strip()
    if khz.isdigit():
        return int(khz) / 1e6
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("cpu MHz"):
            return float(line.split(":", 1)[1]) / 1e3
    m = re.search(r"@\s*([\d.]+)\s*GHz", _cpu_model())
    return float(m.group(1)) if m else np.nan


def _last_level_cache_mb():
    best = np.nan
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    for index in sorted(base.glob("index*")) if base.is_dir() else []:
        size = _read(index / "size").strip()
        m = re.match(r"(\d+)([KM])", size)
        if m:
            mb = int(m.group(1)) / (1024 if m.group(2) == "K" else 1)
            best = mb if np.isnan(best) else max(best, mb)
    return best


def _mem_gb():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    except (ValueError, OSError, AttributeError):
        return np.nan


def describe_local_device(*, threads=None, batch_size=1, name=None):
    """Describe this machine's CPU as a device row in the :data:`DEVICE_FEATURES` schema.

    Parameters
    ----------
    threads : int, default=None
        Cores the measurement will use (``compute_units``); default: the
        number of CPUs this process may run on.
    batch_size : int, default=1
        Batch size of the measurement.
    name : str, default=None
        Device setting name; default ``local_<cpu>_t<threads>``.

    Returns
    -------
    row : pandas.DataFrame
        One numeric row indexed by the device name. Values that cannot be read
        from the OS are NaN (memory bandwidth, TDP, process node and release
        year usually are). ``row.attrs`` holds what was read and how:
        ``cpu_model``, ``machine``, ``torch_version``, ``torch_threads``.

    Examples
    --------
    >>> from skedge.devices import describe_local_device
    >>> row = describe_local_device(threads=1)
    >>> int(row["compute_units"].iloc[0])
    1
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = int(threads or cores or 1)
    flags = _cpu_flags()
    machine = platform.machine().lower()
    # fp32 FLOP per cycle per core from the widest FMA the CPU advertises.
    if "avx512f" in flags:
        flop_per_cycle = 32
    elif "avx2" in flags and "fma" in flags:
        flop_per_cycle = 32
    elif "asimd" in flags or machine in ("aarch64", "arm64"):
        flop_per_cycle = 8
    else:
        flop_per_cycle = 8
    clock = _clock_ghz()
    kind = "board_cpu" if machine in ("aarch64", "arm64", "armv7l") else "desktop_cpu"
    if kind == "desktop_cpu" and re.search(r"xeon|epyc", _cpu_model(), re.I):
        kind = "server_cpu"
    row = {
        "kind": float(DEVICE_KINDS.index(kind)),
        "batch_size": float(batch_size),
        "precision_bits": 32.0,
        "peak_gflops": threads * flop_per_cycle * clock,
        "mem_bandwidth_gbs": np.nan,
        "compute_units": float(threads),
        "clock_ghz": clock,
        "on_chip_mb": _last_level_cache_mb(),
        "mem_gb": _mem_gb(),
        "tdp_w": np.nan,
        "process_nm": np.nan,
        "release_year": np.nan,
    }
    if name is None:
        slug = re.sub(r"[^a-z0-9]+", "_", _cpu_model().lower()).strip("_")[:24] or machine
        name = f"local_{slug}_t{threads}"
    df = pd.DataFrame([row], index=pd.Index([name], name="device"), dtype=np.float64)
    try:
        import torch  # lazy: only to describe this machine; moves to the measurement package (#17)

        torch_version, torch_threads = torch.__version__, torch.get_num_threads()
    except ImportError:  # pragma: no cover - torch is a hard dependency
        torch_version, torch_threads = None, None
    df.attrs.update(
        cpu_model=_cpu_model(),
        machine=machine,
        kind=kind,
        torch_version=torch_version,
        torch_threads=torch_threads,
    )
    return df


# Compatibility: these moved out of the schema module (#13). The lazy imports keep
# ``from skedge.devices import load_devices`` working for code not yet updated
# (skedge._job, skedge.evaluate) without an import cycle at load time; remove them
# once nothing imports the old names (tests/test_architecture.py lists them).
def __getattr__(name):
    if name in ("load_devices", "read_device_file"):
        from . import datasets  # lazy: compatibility re-export (#13)

        return getattr(datasets, name)
    if name == "nearest_devices":
        from . import preprocessing  # lazy: compatibility re-export (#13)

        return preprocessing.nearest_devices
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
