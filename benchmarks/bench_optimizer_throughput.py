"""Throughput of the amortized optimizer's ``predict`` at its default architecture.

A design for a (device, λ) row is one forward pass of the distilled network
plus the argmax and the canonical form; this times the whole
:meth:`~skedge.optimize.AmortizedDesignOptimizer.predict` on 100,000 rows.
Throughput depends on the architecture, not on how well the network was
trained, so the optimizer is fitted briefly (``n_steps=5``, small
distillation) on simulated predictors; everything that shapes ``predict``
(hidden layers, ordinal shifts, one distilled network, ``n_threads=1``,
``refine=0``) keeps its default.

Usage::

    python benchmarks/bench_optimizer_throughput.py [--spaces nb201,ofa-quant]
        [--rows 100000] [--repeats 5] [--json out.json]

It prints a table (best of ``--repeats`` calls; wall and process CPU time) and
writes it as JSON.
"""

from __future__ import annotations

import time

import numpy as np
from _results import parse_timing_args, write_results

from skedge.datasets import make_edge_benchmark, to_pairs
from skedge.devices import DEVICE_FEATURES
from skedge.optimize import AmortizedDesignOptimizer, sample_optimizer_inputs
from skedge.pipelines import make_accuracy_pipeline, make_performance_pipeline

TINY = {"hidden_layer_sizes": (32,), "max_epochs": 2, "random_state": 0}


def _optimizer(space):
    """A default-architecture optimizer over quickly fitted simulated predictors."""
    bench = make_edge_benchmark(space, n_designs=300, n_devices=10, random_state=0)
    energy = space.startswith("ofa")
    acc = make_accuracy_pipeline(bench.space, **TINY).fit(bench.designs, bench.accuracy)
    lat = make_performance_pipeline(bench.space, **TINY).fit(*to_pairs(bench)[:2])
    en = (make_performance_pipeline(bench.space, **TINY).fit(
        *to_pairs(bench, target="energy")[:2]) if energy else None)
    D = bench.devices[list(DEVICE_FEATURES)].to_numpy(np.float64)
    rows = sample_optimizer_inputs(D, 256, n_lambdas=2 if energy else 1, random_state=0)
    opt = AmortizedDesignOptimizer(space=bench.space, accuracy=acc, latency=lat, energy=en,
                                   n_steps=5, n_augment=256, distill=256, random_state=0)
    return opt.fit(rows), D


def run(spaces=("nb201", "ofa-quant"), n_rows=100_000, repeats=5):
    records = []
    for space in spaces:
        opt, D = _optimizer(space)
        rows = sample_optimizer_inputs(D, n_rows, n_lambdas=len(opt.objective_.lambda_names),
                                       random_state=1)
        opt.predict(rows[:1000])  # warm-up
        wall, cpu = [], []
        for _ in range(repeats):
            t, c = time.perf_counter(), time.process_time()
            opt.predict(rows)
            wall.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        records.append({
            "space": space, "rows": n_rows, "hidden_layer_sizes": list(opt.hidden_layer_sizes),
            "n_threads": opt.n_threads, "networks": len(opt.networks_),
            "designs_per_s": n_rows / min(wall), "designs_per_cpu_s": n_rows / min(cpu),
            "best_wall_s": min(wall), "median_wall_s": float(np.median(wall)),
        })
    return records


def main(argv=None):
    args = parse_timing_args(__doc__.split("\n")[0], argv, spaces="nb201,ofa-quant", rows=100_000,
                             repeats=5)
    records = run(args.spaces, args.rows, args.repeats)
    print(f"{'space':<10} {'rows':>8} {'designs/s':>10} {'per CPU-s':>10} "
          f"{'best s':>7} {'median s':>8}")
    for r in records:
        print(f"{r['space']:<10} {r['rows']:>8,} {r['designs_per_s']:>10,.0f} "
              f"{r['designs_per_cpu_s']:>10,.0f} {r['best_wall_s']:>7.2f} "
              f"{r['median_wall_s']:>8.2f}")
    if args.json:
        write_results(args.json, records)


if __name__ == "__main__":
    main()
