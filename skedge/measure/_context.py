"""What a measurement records about its device: the feature row and the conditions."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

import numpy as np
import torch

from .._version import __version__
from ..devices import DEVICE_KINDS
from ._energy import _nvml_handle
from ._local import describe_local_device

__all__ = ["describe_cuda_device"]

# FP32 CUDA cores per SM by compute capability (NVIDIA's CUDA programming guide).
_CORES_PER_SM = {(6, 0): 64, (6, 1): 128, (7, 0): 64, (7, 2): 64, (7, 5): 64, (8, 0): 64,
                 (8, 6): 128, (8, 7): 128, (8, 9): 128, (9, 0): 128, (10, 0): 128,
                 (12, 0): 128}
_DATACENTER = re.compile(r"tesla|\b[ahlbv]\d{2,3}\b|\bt4\b|\ba10g?\b|\bl4\b|h100|h200|b200|gh200",
                         re.IGNORECASE)


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


def _nvml_info(index):
    """Clocks, bandwidth, power limit and driver of a GPU from NVML; {} without it."""
    try:
        # nvidia-ml-py is optional: without it these features stay unknown (NaN).
        import pynvml as nvml  # optional: nvidia-ml-py, only on NVIDIA machines

        nvml.nvmlInit()
        h = _nvml_handle(nvml, index)
    except Exception:  # noqa: BLE001 - no package, no driver: the features stay unknown
        return {}
    info = {}
    for key, call in [
        ("sm_mhz", lambda: nvml.nvmlDeviceGetMaxClockInfo(h, nvml.NVML_CLOCK_SM)),
        ("mem_mhz", lambda: nvml.nvmlDeviceGetMaxClockInfo(h, nvml.NVML_CLOCK_MEM)),
        ("bus_bits", lambda: nvml.nvmlDeviceGetMemoryBusWidth(h)),
        ("power_mw", lambda: nvml.nvmlDeviceGetPowerManagementLimit(h)),
        ("driver", lambda: nvml.nvmlSystemGetDriverVersion()),
    ]:
        with contextlib.suppress(Exception):  # a query this GPU does not support
            info[key] = call()
    return info


def describe_cuda_device(index=0, *, batch_size=1):
    """Describe a CUDA GPU as a device row in the :data:`~skedge.devices.DEVICE_FEATURES` schema.

    From :func:`torch.cuda.get_device_properties` (name, SMs, memory, L2
    cache, integrated or not) and, where ``nvidia-ml-py`` is installed, NVML
    (maximum SM and memory clocks, memory bus width, power limit, driver).

    Parameters
    ----------
    index : int, default=0
    batch_size : int, default=1

    Returns
    -------
    features : dict
        ``kind`` (a :data:`~skedge.devices.DEVICE_KINDS` name), ``batch_size``,
        ``precision_bits`` (32), ``peak_gflops`` (FP32: SMs x cores per SM x 2
        x clock), ``mem_bandwidth_gbs`` (memory clock x 2 x bus width),
        ``compute_units`` (SMs), ``clock_ghz``, ``on_chip_mb`` (L2),
        ``mem_gb``, ``tdp_w`` (power limit); NaN where unknown.
    context : dict
        ``gpu_name``, ``driver_version``, ``cuda_version``.
    """
    props = torch.cuda.get_device_properties(index)
    info = _nvml_info(index)
    sms = float(props.multi_processor_count)
    clock = info.get("sm_mhz", np.nan) / 1e3
    if not np.isfinite(clock) and getattr(props, "clock_rate", 0):
        clock = props.clock_rate / 1e6  # kHz
    cores = _CORES_PER_SM.get((props.major, props.minor), np.nan)
    bandwidth = info.get("mem_mhz", np.nan) * 2 * info.get("bus_bits", np.nan) / 8 / 1e3
    if getattr(props, "is_integrated", False) or re.search(r"orin|xavier|jetson|tegra",
                                                            props.name, re.IGNORECASE):
        kind = "edge_gpu"
    else:
        kind = "datacenter_gpu" if _DATACENTER.search(props.name) else "desktop_gpu"
    features = {
        "kind": kind,
        "batch_size": float(batch_size),
        "precision_bits": 32.0,
        "peak_gflops": sms * cores * 2 * clock,
        "mem_bandwidth_gbs": bandwidth,
        "compute_units": sms,
        "clock_ghz": clock,
        "on_chip_mb": getattr(props, "L2_cache_size", np.nan) / 2**20,
        "mem_gb": props.total_memory / 2**30,
        "tdp_w": info.get("power_mw", np.nan) / 1e3,
        "process_nm": np.nan,
        "release_year": np.nan,
    }
    context = {"gpu_name": props.name, "driver_version": str(info.get("driver", "")),
               "cuda_version": torch.version.cuda or ""}
    return features, context


def _slug(text):
    return re.sub(r"[^a-z0-9]+", "_", str(text).lower()).strip("_")[:24]


def device_context(*, threads, batch_size, quantize, device_name, target="cpu",
                   backend="torch", cuda_graphs=False):
    """``(device name, feature row, context columns)`` of one device setting."""
    row = describe_local_device(threads=threads, batch_size=batch_size)
    context = {
        "cpu_model": row.attrs.get("cpu_model", ""),
        "machine": row.attrs.get("machine", ""),
        "governor": _governor(),
        "omp_env": _omp_env(),
        "torch_version": row.attrs.get("torch_version", ""),
        "skedge_version": __version__,
    }
    if target == "cpu":
        features = row.iloc[0].to_dict()
        features["kind"] = DEVICE_KINDS[int(features["kind"])]
        default = str(row.index[0])
    else:
        features, gpu = describe_cuda_device(torch.device(target).index, batch_size=batch_size)
        context.update(gpu)
        default = f"cuda_{_slug(gpu['gpu_name'])}"
    if backend == "onnxruntime":
        # onnxruntime is optional; this runs only for its backend, after the runner opened.
        import onnxruntime  # optional: the "profile" extra, only for this backend

        context["backend_version"] = onnxruntime.__version__
        default += "_ort"
    if quantize == "int8":
        features["precision_bits"] = 8.0
    if device_name is None:
        device_name = default
        if cuda_graphs:
            device_name += "_graphs"
        if quantize:
            device_name += f"_{quantize}"
        if batch_size != 1:
            device_name += f"_{batch_size}"
    device_name = str(device_name).strip()
    if not device_name or "," in device_name or "\n" in device_name:
        raise ValueError(f"device name {device_name!r} must be non-empty, without ',' or newlines.")
    return device_name, features, context
