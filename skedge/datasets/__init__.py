"""Benchmarks: the embedded simulator and loaders for the real measured data."""

from ._device_population import DEVICE_FAMILIES, make_device_population
from ._devices import load_devices, read_device_file
from ._home import data_file, get_data_home
from ._measurements import load_measurements
from ._pairs import floor_latency, merge_benchmarks, to_pairs
from ._real import (
    load_fbnet,
    load_nb201,
    load_ofa,
    load_reference_designs,
    nb201_arch_idx,
    nb201_designs,
)
from ._simulator import make_edge_benchmark, simulated_truth

__all__ = ["data_file", "floor_latency", "get_data_home", "merge_benchmarks", "to_pairs"]
__all__ += [
    "load_fbnet",
    "load_nb201",
    "load_ofa",
    "load_reference_designs",
    "nb201_arch_idx",
    "nb201_designs",
]
__all__ += ["load_devices", "load_measurements", "read_device_file"]
__all__ += ["DEVICE_FAMILIES", "make_device_population", "make_edge_benchmark", "simulated_truth"]
