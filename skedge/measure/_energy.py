"""Real energy from hardware counters: NVML on NVIDIA GPUs, RAPL on Intel/AMD CPUs.

A counter is read before and after a loop of inferences lasting at least a
given time; the difference over the number of inferences is the energy per
inference (mJ). Both counters are cumulative: NVML's total-energy counter
(mJ since the driver loaded; Volta and newer GPUs) and the RAPL package
counters of Linux powercap (µJ, wrapping at ``max_energy_range_uj``).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from ._optional import optional_import

__all__ = [
    "NvmlCounter",
    "RaplCounter",
    "energy_per_run",
    "idle_baseline",
    "open_energy_counter",
]

_RAPL_ROOT = "/sys/class/powercap"


class RaplCounter:
    """CPU package energy from the Linux powercap RAPL zones (all packages summed).

    Parameters
    ----------
    root : str or path-like, default="/sys/class/powercap"
        The powercap folder; its ``intel-rapl:N`` zones named ``package-N``
        are read (AMD CPUs expose theirs under the same name).

    Attributes
    ----------
    name : str
        ``"rapl:package-0"`` (``+package-1`` ... on several sockets).
    unit_mj : float
        Unit of the counter: 1 µJ = 0.001 mJ.

    Examples
    --------
    >>> import os, tempfile
    >>> from skedge.measure import RaplCounter
    >>> root = tempfile.mkdtemp(); zone = os.path.join(root, "intel-rapl:0"); os.mkdir(zone)
    >>> for f, v in [("name", "package-0"), ("energy_uj", "1000"),
    ...              ("max_energy_range_uj", "262143328850")]:
    ...     _ = open(os.path.join(zone, f), "w").write(v + "\\n")
    >>> counter = RaplCounter(root)
    >>> _ = open(os.path.join(zone, "energy_uj"), "w").write("6000\\n")
    >>> counter.name, counter.read_mj()
    ('rapl:package-0', 5.0)
    """

    unit_mj = 1e-3

    def __init__(self, root=_RAPL_ROOT):
        root = Path(root)
        zones = []
        for zone in sorted(root.glob("intel-rapl:*")):
            if zone.name.count(":") != 1 or not (zone / "energy_uj").exists():
                continue  # sub-zones (core, uncore, dram) are inside their package
            name = _read_text(zone / "name")
            if name.startswith("package"):
                zones.append((name, zone / "energy_uj", int(_read_text(zone / "max_energy_range_uj"))))
        if not zones:
            raise ValueError(
                f"no RAPL package counter under {root} (intel-rapl:N/energy_uj of a zone named "
                "package-N): this CPU or kernel exposes none (a virtual machine usually "
                "does not), so energy cannot be measured here."
            )
        self._zones = zones
        self.name = "rapl:" + "+".join(z[0] for z in zones)
        self._last = [self._raw(path) for _, path, _ in zones]
        self._total_uj = 0

    @staticmethod
    def _raw(path):
        try:
            return int(path.read_text().strip())
        except PermissionError:
            raise ValueError(
                f"{path} is not readable: since Linux 5.10 only root may read RAPL energy. "
                f"Run as root, or allow it: sudo chmod a+r {path}"
            ) from None

    def read_mj(self):
        """Energy (mJ) used since the counter was opened, wraparounds included."""
        for i, (_, path, max_range) in enumerate(self._zones):
            raw = self._raw(path)
            delta = raw - self._last[i]
            if delta < 0:  # the counter wrapped around
                delta += max_range
            self._total_uj += delta
            self._last[i] = raw
        return self._total_uj * self.unit_mj


def _read_text(path):
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


class NvmlCounter:
    """Total energy of one NVIDIA GPU from NVML (``nvmlDeviceGetTotalEnergyConsumption``).

    Parameters
    ----------
    index : int, default=0
        The CUDA device index; mapped to the NVML device through its UUID
        (so ``CUDA_VISIBLE_DEVICES`` is respected), by index where torch
        cannot tell.

    Attributes
    ----------
    name : str
        ``"nvml:<index>"``.
    unit_mj : float
        1 mJ, the counter's unit.
    """

    unit_mj = 1.0

    def __init__(self, index=0):
        # nvidia-ml-py is optional (the "profile" extra): only GPU energy needs it.
        self._nvml = nvml = optional_import("pynvml", "reading GPU energy through NVML")
        try:
            nvml.nvmlInit()
            self._handle = _nvml_handle(nvml, int(index))
            nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
        except nvml.NVMLError as exc:
            raise ValueError(
                f"NVML cannot read the total-energy counter of GPU {index} ({exc}); it needs an "
                "NVIDIA driver and a Volta or newer GPU."
            ) from None
        self.name = f"nvml:{int(index)}"

    def read_mj(self):
        """Energy (mJ) the GPU used since the driver loaded."""
        return float(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))


def _nvml_handle(nvml, index):
    if torch.cuda.is_available():
        uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
        if uuid is not None:
            try:
                return nvml.nvmlDeviceGetHandleByUUID(f"GPU-{uuid}")
            except nvml.NVMLError:
                pass
    return nvml.nvmlDeviceGetHandleByIndex(index)


def open_energy_counter(target="cpu", *, rapl_root=None):
    """The energy counter of a measurement target: RAPL for ``"cpu"``, NVML for ``"cuda:N"``.

    Raises
    ------
    ValueError
        Where no counter can be read, saying why (no zone, permissions, no
        NVML package or an unsupported GPU).

    Examples
    --------
    >>> from skedge.measure import open_energy_counter
    >>> open_energy_counter("cpu", rapl_root="/nonexistent")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: no RAPL package counter under /nonexistent ...
    """
    target = str(target)
    if target == "cpu":
        return RaplCounter(rapl_root or _RAPL_ROOT)
    if target.startswith("cuda"):
        return NvmlCounter(torch.device(target).index or 0)
    raise ValueError(f"no energy counter for target {target!r}.")


def idle_baseline(counter, seconds=1.0, *, poll_s=0.002):
    """Idle power and the counter's resolution, from polling it while nothing runs.

    Returns
    -------
    power_w : float
        Mean power over ``seconds`` (W = mJ per ms).
    resolution_mj : float
        The smallest non-zero step the counter made (its unit if it made none).
    update_ms : float
        Median time between counter changes (NaN with fewer than 3 changes).

    Examples
    --------
    >>> from skedge.measure import idle_baseline
    >>> class Meter:  # 1 mJ per read, for the example
    ...     unit_mj, total = 1.0, 0.0
    ...     def read_mj(self):
    ...         self.total += 1.0
    ...         return self.total
    >>> power_w, resolution_mj, update_ms = idle_baseline(Meter(), 0.01)
    >>> resolution_mj, power_w > 0
    (1.0, True)
    """
    start = time.perf_counter()
    first = last = counter.read_mj()
    steps, changes = [], []
    while time.perf_counter() - start < seconds:
        time.sleep(poll_s)
        value = counter.read_mj()
        if value != last:
            steps.append(value - last)
            changes.append(time.perf_counter())
            last = value
    elapsed_ms = (time.perf_counter() - start) * 1e3
    power = (last - first) / elapsed_ms
    resolution = min(steps) if steps else counter.unit_mj
    update_ms = float(np.median(np.diff(changes)) * 1e3) if len(changes) >= 3 else np.nan
    return float(power), float(resolution), update_ms


def energy_per_run(run, counter, *, seconds=1.0, latency_ms, sync=None):
    """Energy per inference (mJ): counter difference over a loop of at least ``seconds``.

    Parameters
    ----------
    run : callable
        One inference.
    counter : RaplCounter or NvmlCounter
    seconds : float, default=1.0
        Minimum length of the loop, from ``latency_ms``; long against the
        counter's update interval (NVML: tens of ms on many GPUs).
    latency_ms : float
        Measured latency of one run, to size the loop.
    sync : callable, default=None
        Waits for the device (``torch.cuda.synchronize``) before each read.

    Returns
    -------
    energy_mj : float
    n_runs : int

    Examples
    --------
    >>> from skedge.measure import energy_per_run
    >>> class Meter:  # a counter that gains 2 mJ per read, for the example
    ...     unit_mj, total = 1.0, 0.0
    ...     def read_mj(self):
    ...         self.total += 2.0
    ...         return self.total
    >>> energy_per_run(lambda: None, Meter(), seconds=0.01, latency_ms=1.0)
    (0.2, 10)
    """
    sync = sync or (lambda: None)
    n = max(1, int(np.ceil(seconds * 1e3 / max(float(latency_ms), 1e-3))))
    sync()
    before = counter.read_mj()
    for _ in range(n):
        run()
    sync()
    return (counter.read_mj() - before) / n, n
