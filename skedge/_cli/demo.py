"""``skedge demo``: simulate a benchmark and show why one latency model per device family fails.

A quick look before the end-to-end job (``skedge run``): it runs
:func:`skedge.datasets.make_edge_benchmark` and prints, per device family, the
device count and latency range, then the Spearman rank correlation of design
latencies between families (well below 1: the fastest designs on one family are
not the fastest on another).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from ..datasets import make_edge_benchmark
from ..devices import DEVICE_KINDS

__all__ = ["family_summary", "register", "run_demo"]


def register(subparsers):
    """Add the ``demo`` sub-command."""
    p = subparsers.add_parser(
        "demo",
        help="run the simulator and print a summary",
        description="Simulate designs x edge devices (no download) and summarize per family.",
    )
    p.add_argument("--space", default="ofa-quant",
                   help="design space: ofa-quant, ofa, nb201 or fbnet (default: ofa-quant)")
    p.add_argument("--n-designs", type=int, default=2000, help="designs to simulate (2000)")
    p.add_argument("--n-devices", type=int, default=40, help="device settings to simulate (40)")
    p.add_argument("--random-state", type=int, default=0, help="seed (0)")
    p.set_defaults(func=run_demo)


def family_summary(bench):
    """Per-family table and family-by-family Spearman matrix of design latencies.

    Returns
    -------
    table : DataFrame
        Per family: ``kind``, ``devices``, and the median design latency (ms)
        of its fastest and slowest device.
    rho : DataFrame
        Spearman correlation between families of the per-design geometric mean
        latency over each family's devices.
    """
    log_lat = np.log(bench.latency)
    family = bench.family
    medians = bench.latency.median()
    kinds = bench.devices["kind"].map(lambda k: DEVICE_KINDS[int(k)])
    table = pd.DataFrame({
        "kind": kinds.groupby(family).first(),
        "devices": family.value_counts(),
        "fastest device (median ms)": medians.groupby(family).min(),
        "slowest device (median ms)": medians.groupby(family).max(),
    })
    table.index.name = "family"
    per_family = log_lat.T.groupby(family).mean().T
    rho = per_family.corr(method="spearman")
    return table, rho


def run_demo(args):
    """Run ``skedge demo``; returns the exit status."""
    start = time.perf_counter()
    bench = make_edge_benchmark(
        args.space, n_designs=args.n_designs, n_devices=args.n_devices,
        random_state=args.random_state,
    )
    seconds = time.perf_counter() - start
    table, rho = family_summary(bench)
    acc = bench.accuracy
    print(f"Simulated {bench.space!r}: {len(bench.designs)} designs x {bench.latency.shape[1]} "
          f"devices in {seconds:.1f} s (accuracy {acc.min():.1f}-{acc.max():.1f} %).\n")
    print(table.to_string(float_format=lambda v: f"{v:.2f}"))
    short = {f: "".join(w[0] for w in f.split("_")) for f in rho.index}
    print("\nSpearman rank correlation of design latencies between families "
          "(1 = same ranking):")
    print("  " + ", ".join(f"{s}={f}" for f, s in short.items()))
    print(rho.rename(index=short, columns=short).to_string(float_format=lambda v: f"{v:.2f}"))
    if len(rho) > 1:
        off = rho.to_numpy()[~np.eye(len(rho), dtype=bool)]
        i, j = np.unravel_index(np.nanargmin(rho.to_numpy()), rho.shape)
        print(f"\nLowest: {rho.index[i]} vs {rho.columns[j]} rho={rho.iloc[i, j]:.2f} "
              f"(median over pairs {np.nanmedian(off):.2f}).")
    return 0
