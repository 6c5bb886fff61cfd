"""Few-shot designs on the simulator: with and without the optimizer's adapted input.

``skedge apply --shots`` (and the run's zero- vs 10-shot table) designs for a
device with measured designs in two ways at once: the optimizer designs for
the device as specified and for the adapted device
(:func:`skedge.optimize._adapted.adapted_encoding`), and the adapted
predictors choose among those proposals. This benchmark fits the default
``skedge run`` job (simulated OFA with bit-widths) with 6 unseen devices and 6
λ, then for 5 random draws of 10 shots per device compares the true objective
of the designs chosen with the adapted input (the default) and without it
(re-scoring the proposals for the specified device only), and both against
the zero-shot designs.

Usage::

    python benchmarks/bench_shots_adapted_input.py [--draws 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import functools
import json
import time

import numpy as np

import skedge.optimize._adapted as adapted
import skedge.workflow._shots as shots
from skedge.workflow import run_workflow

LAMBDAS = [0.003, 0.01, 0.03, 0.1, 0.3, 1.0]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--draws", type=int, default=5)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    t = time.perf_counter()
    res = run_workflow(test_devices=6, lambdas=LAMBDAS, progress=print)
    print(f"workflow fitted in {time.perf_counter() - t:.0f} s")
    f = {}
    for adapt in (False, True):
        # The run's table calls design_with_shots; pin its adapt_input for this pass.
        shots.design_with_shots = functools.partial(adapted.design_with_shots,
                                                    adapt_input=adapt)
        f0, fk = [], []
        for seed in range(args.draws):
            table = shots.zero_vs_few_shot(res.data, res.models, res.optimizer, res.lambdas,
                                           res.lambda_energy, seed)
            f0.append(table[table.shots == 0].true_objective.to_numpy())
            fk.append(table[table.shots > 0].true_objective.to_numpy())
        f[adapt] = np.concatenate(fk)
        f["zero"] = np.concatenate(f0)
    shots.design_with_shots = adapted.design_with_shots
    summary = {}
    for name, a, b in (("10 shots, re-scoring only vs 0 shots", f[False], f["zero"]),
                       ("10 shots, adapted input vs 0 shots", f[True], f["zero"]),
                       ("adapted input vs re-scoring only", f[True], f[False])):
        d = a - b
        summary[name] = {"better": int((d < -1e-12).sum()), "equal": int((abs(d) <= 1e-12).sum()),
                         "worse": int((d > 1e-12).sum()), "mean_change": float(d.mean())}
        r = summary[name]
        print(f"{name:<40} better {r['better']:>4}  equal {r['equal']:>4}  worse {r['worse']:>4}  "
              f"mean change of the true objective {r['mean_change']:+.5f}")
    # The absolute level too: a better zero-shot design leaves the shots less to gain.
    summary["mean_true_objective"] = {"0 shots": float(f["zero"].mean()),
                                      "10 shots, re-scoring only": float(f[False].mean()),
                                      "10 shots, adapted input": float(f[True].mean())}
    print("mean true objective: " + ", ".join(
        f"{k} {v:.5f}" for k, v in summary["mean_true_objective"].items()))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(summary, fh, indent=2)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
