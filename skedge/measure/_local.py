"""This machine's CPU as a device row: :func:`describe_local_device`.

Read from the OS (``/proc/cpuinfo``, ``/sys/devices/system/cpu``, ``sysconf``);
what cannot be read stays NaN. The row follows the schema of :mod:`skedge.devices`.
"""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..devices import DEVICE_KINDS

__all__ = ["describe_local_device"]


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
    """Describe this machine's CPU as a row of :data:`~skedge.devices.DEVICE_FEATURES`.

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
    >>> from skedge.measure import describe_local_device
    >>> row = describe_local_device(threads=1)
    >>> int(row["compute_units"].iloc[0])
    1
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = int(threads or cores or 1)
    flags = _cpu_flags()
    machine = platform.machine().lower()
    # fp32 FLOP per cycle per core from the widest FMA the CPU advertises.
    if "avx512f" in flags or ("avx2" in flags and "fma" in flags):
        flop_per_cycle = 32
    elif "asimd" in flags or machine in ("aarch64", "arm64"):
        flop_per_cycle = 8
    else:
        flop_per_cycle = 8
    clock = _clock_ghz()
    kind = "board_cpu" if machine in ("aarch64", "arm64", "armv7l") else "desktop_cpu"
    if kind == "desktop_cpu" and re.search(r"xeon|epyc", _cpu_model(), re.IGNORECASE):
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
    df.attrs.update(
        cpu_model=_cpu_model(),
        machine=machine,
        kind=kind,
        torch_version=torch.__version__,
        torch_threads=torch.get_num_threads(),
    )
    return df
