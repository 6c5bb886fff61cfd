"""Moves per second of one greedy round of the objective every search in skedge uses.

Every search in skedge (``SearchBaseline``, the greedy rounds that label the
optimizer's distillation rows, ``design_with_shots``) spends its time in
:meth:`skedge.optimize.Objective.metrics` on hard designs. This times one
greedy round (every single-choice move of each row's design, scored in one
batch, as :func:`skedge.optimize._engines.greedy_refine` does) on one torch
thread, with the networks' first layers folded (the default: a sum of one
column per choice plus a term per device row) and unfolded (the one-hot code
through the full first layer, as before), at two predictor sizes: those of
``skedge run`` (latency and energy (256, 256), accuracy (128, 128)) and those
of ``skedge evaluate-optimizer`` ((128, 128, 128) for all three). The scores
depend on the architecture, not on the training, so the predictors are fitted
for one epoch. A move that changes a choice the design does not use (a block
beyond its stage's depth) gives back the design itself and is not scored;
the table counts every move and shows the share of those.

Usage::

    python benchmarks/bench_search_objective.py [--spaces ofa-quant,nb201]
        [--rows 512] [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import time

import numpy as np
import torch
from _results import parse_timing_args, write_results

from skedge.datasets import make_edge_benchmark, to_pairs
from skedge.devices import DEVICE_FEATURES
from skedge.optimize import Objective
from skedge.optimize._engines import _apply_moves, _move_table, greedy_refine
from skedge.pipelines import make_accuracy_pipeline, make_performance_pipeline

SIZES = {"skedge run": ((128, 128), (256, 256)),
         "evaluate-optimizer": ((128, 128, 128), (128, 128, 128))}


def _objective(space, accuracy_hidden, performance_hidden):
    bench = make_edge_benchmark(space, n_designs=300, n_devices=10, random_state=0)
    common = {"max_epochs": 1, "random_state": 0}
    acc = make_accuracy_pipeline(bench.space, hidden_layer_sizes=accuracy_hidden, **common)
    acc.fit(bench.designs, bench.accuracy)
    perf = {}
    targets = ("latency", "energy") if space.startswith("ofa") else ("latency",)
    for target in targets:
        X, y, _ = to_pairs(bench, target=target)
        perf[target] = make_performance_pipeline(
            bench.space, hidden_layer_sizes=performance_hidden, **common).fit(X, y)
    obj = Objective(bench.space, acc, perf["latency"], perf.get("energy"))
    return obj, bench.devices[list(DEVICE_FEATURES)].to_numpy(np.float64)


def _unused_share(obj, designs):
    """Share of single-choice moves that change a choice the design does not use."""
    cand = _apply_moves(obj.space, designs, *_move_table(obj.space))
    return float((cand == designs[:, None]).all(axis=2).mean())


def _round_seconds(obj, D, n_rows, repeats, rng):
    rows = D[rng.randint(len(D), size=n_rows)]
    lam = np.exp(rng.uniform(np.log(1e-3), 0, size=(n_rows, obj.n_lambdas)))
    designs = obj.space.sample(n_rows, random_state=1)
    refs = obj.references(rows)
    greedy_refine(obj, designs[:16].copy(), np.full(16, np.inf), rows[:16], lam[:16],
                  refs[:16], 1)  # warm-up
    best = np.inf
    for _ in range(repeats):
        # Values of +inf: every row moves, so every round scores all its moves.
        t = time.perf_counter()
        greedy_refine(obj, designs.copy(), np.full(n_rows, np.inf), rows, lam, refs, 1)
        best = min(best, time.perf_counter() - t)
    return best


def run(spaces=("ofa-quant", "nb201"), n_rows=512, repeats=3):
    records = []
    torch.set_num_threads(1)
    for space in spaces:
        for label, (acc_hidden, perf_hidden) in SIZES.items():
            obj, D = _objective(space, acc_hidden, perf_hidden)
            moves = len(_move_table(obj.space)[0])
            result = {"space": space, "sizes": label, "rows": n_rows, "moves_per_row": moves,
                      "unused_moves": _unused_share(obj, obj.space.sample(n_rows, 1))}
            predictors = [f for f in (obj.f_acc, obj.f_lat, obj.f_en) if f is not None]
            folds = [f._fold for f in predictors]
            for folded in (True, False):
                # Unfolded: hard() takes the one-hot code through the whole network.
                for f, fold in zip(predictors, folds):
                    f._fold = fold if folded else None
                seconds = _round_seconds(obj, D, n_rows, repeats, np.random.RandomState(0))
                key = "folded" if folded else "unfolded"
                result[f"{key}_moves_per_s"] = n_rows * moves / seconds
            result["speedup"] = result["folded_moves_per_s"] / result["unfolded_moves_per_s"]
            records.append(result)
    return records


def main(argv=None):
    args = parse_timing_args(__doc__.split("\n")[0], argv, spaces="ofa-quant,nb201", rows=512,
                             repeats=3)
    records = run(args.spaces, args.rows, args.repeats)
    print(f"{'space':<10} {'predictor sizes':<19} {'moves/row':>9} {'unused':>6} "
          f"{'folded /s':>10} {'unfolded /s':>11} {'speedup':>7}")
    for r in records:
        print(f"{r['space']:<10} {r['sizes']:<19} {r['moves_per_row']:>9} "
              f"{r['unused_moves']:>6.0%} {r['folded_moves_per_s']:>10,.0f} "
              f"{r['unfolded_moves_per_s']:>11,.0f} {r['speedup']:>6.2f}x")
    if args.json:
        write_results(args.json, records, torch_threads=1)


if __name__ == "__main__":
    main()
