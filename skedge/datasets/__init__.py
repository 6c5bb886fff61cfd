"""Benchmarks: the embedded simulator and loaders for the real measured data."""

from ._home import data_file, get_data_home
from ._pairs import merge_benchmarks, to_pairs

__all__ = ["get_data_home", "data_file", "to_pairs", "merge_benchmarks"]
