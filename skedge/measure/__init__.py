"""Measure designs on this machine or elsewhere: ``skedge measure``, ``export``, ``import-timings``.

The protocol: build each design's network (:func:`skedge.models.build_model`),
run ``warmup`` untimed and ``repeats`` timed inferences of one random batch
under :func:`torch.inference_mode` with a fixed thread count, timed by
:class:`torch.utils.benchmark.Timer` (on a CUDA GPU it synchronizes around
each run), and record the median and the spread; optionally the energy per
inference from a hardware counter (NVML, RAPL). Each finished design becomes
one CSV row, written in a single ``write`` and flushed to disk (``os.fsync``)
before the next design starts, so a run killed at any moment loses at most
the design in progress; ``resume=True`` repairs a torn last line and skips
what the file holds.

Every row carries the device's feature row (:data:`~skedge.devices.DEVICE_FEATURES`,
from :func:`describe_local_device` or
:func:`describe_cuda_device`) and the conditions of the measurement (threads,
batch size, load average, CPU governor, versions), so one file copied back
from a phone, a board or a GPU server is self-contained:
:func:`skedge.datasets.load_measurements` turns it into a benchmark.

Devices that cannot run Python get ONNX files (:func:`export_onnx`), timed
there with their own tools; :func:`import_timings` reads the latencies back.

Modules: :mod:`skedge.datasets._measurement_format` (the file format, shared with the
loaders), ``_designs`` (which designs), ``_timers`` (torch, CUDA, onnxruntime),
``_energy`` (NVML, RAPL), ``_local`` (this machine's CPU), ``_context`` (device
rows), ``_run`` (:func:`measure`), ``_export`` (ONNX); the sub-commands are in
``skedge._cli.measure``.
"""

from ..datasets._measurement_format import measurement_columns, read_measurement_file
from ._context import describe_cuda_device
from ._designs import read_designs_file, select_designs
from ._energy import (
    NvmlCounter,
    RaplCounter,
    energy_per_run,
    idle_baseline,
    open_energy_counter,
)
from ._export import export_onnx, import_timings, read_manifest
from ._local import describe_local_device
from ._run import measure, repeatability
from ._timers import time_model, time_onnx_model, time_runs

__all__ = [
    "NvmlCounter",
    "RaplCounter",
    "describe_cuda_device",
    "describe_local_device",
    "energy_per_run",
    "export_onnx",
    "idle_baseline",
    "import_timings",
    "measure",
    "measurement_columns",
    "open_energy_counter",
    "read_designs_file",
    "read_manifest",
    "read_measurement_file",
    "repeatability",
    "select_designs",
    "time_model",
    "time_onnx_model",
    "time_runs",
]
