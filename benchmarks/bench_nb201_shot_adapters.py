"""Which latency model shots should adapt in ``skedge apply --shots`` on real NAS-Bench-201.

``skedge apply --shots`` corrects the run's zero-shot latency pipeline with
:class:`~skedge.fewshot.FewShotAdapter` (:func:`skedge.workflow.adapt_devices`).
The alternative is the model ``skedge evaluate-predictors`` measures: a
:class:`~skedge.crossdevice.CrossDeviceRegressor` (defaults; its signature the
space's 10 reference designs, which ``skedge measure --include-reference``
measures) fitted on every cell of the run's training devices and adapted to
the shots. This benchmark fits the default real-data run per seed (4 unseen
devices, whole hardware groups held out) and that model, then for
``--draws`` random draws per device designs with each adapter as ``apply
--shots`` does (:func:`~skedge.optimize.design_with_shots`, NB201 scored
whole) at 12 λ log-spaced over the optimizer's range, from three kinds of
shots: 10 random cells, the 10 reference designs, or both. The designs are
scored on the measured accuracy and latency of all 15,625 cells: true regret
as a fraction of the device's true objective range. The optimizer's forward
pass (zero-shot) is the reference.

Usage::

    SKEDGE_DATA=../shared/data python benchmarks/bench_nb201_shot_adapters.py \
        [--seeds 0,1] [--draws 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from _results import write_results
from sklearn.utils import Bunch

from skedge import CrossDeviceRegressor
from skedge.datasets import get_data_home, to_pairs
from skedge.devices import DEVICE_FEATURES
from skedge.evaluation._optimizer import design_rows
from skedge.optimize import design_with_shots
from skedge.workflow import adapt_devices, run_workflow


def true_objective(data, opt, dev, lam):
    """True objective ``f[i, j]`` of every cell ``data.bench.designs[j]`` at ``lam[i]`` on ``dev``."""
    every = data.bench.designs
    true = data.truth(every, [dev] * len(every))
    refs = opt.objective_.reference_designs
    norm = float(np.exp(np.log(data.truth(refs, [dev] * len(refs))["latency"]).mean()))
    return -true["accuracy"][None] / 100 + lam[:, None] * true["latency"][None] / norm


def regrets(data, f, designs):
    """True regret of ``designs[i]`` under the objective row ``f[i]``, a share of its range."""
    mine = f[np.arange(len(f)), design_rows(data.space, data.bench.designs, designs)]
    return (mine - f.min(axis=1)) / np.ptp(f, axis=1)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--draws", type=int, default=5)
    p.add_argument("--shots", default="random,reference,both",
                   help="which designs are measured: 10 random cells, the 10 reference "
                        "designs, or both (comma-separated, each scored)")
    p.add_argument("--data-home", default=None)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    home = get_data_home(args.data_home)
    records = []
    for seed in map(int, args.seeds.split(",")):
        t = time.perf_counter()
        res = run_workflow(data_home=home, random_state=seed)
        print(f"seed {seed}: workflow fitted in {time.perf_counter() - t:.0f} s")
        data, opt, b = res.data, res.optimizer, res.data.bench
        lo, hi = opt.lambda_range
        lam = np.geomspace(lo, hi, 12)
        table = b.devices.loc[data.test_devices, list(DEVICE_FEATURES)]
        X, y, groups = to_pairs(b, devices=data.train_devices)
        cross = CrossDeviceRegressor(space=data.space, reference_designs=b.designs[b.reference_idx],
                                     random_state=seed).fit(X, y, groups=groups)
        rng = np.random.RandomState(seed)
        for dev in data.test_devices:
            d = table.loc[dev].to_numpy(np.float64)
            f = true_objective(data, opt, dev, lam)
            zero = opt.predict(np.column_stack([np.tile(d, (len(lam), 1)), lam]))
            base = regrets(data, f, zero)
            measured = np.flatnonzero(b.latency[dev].notna().to_numpy())
            for draw in range(args.draws):
                random = rng.choice(np.setdiff1d(measured, b.reference_idx), size=10,
                                    replace=False)
                picks = {"random": random, "reference": np.asarray(b.reference_idx),
                         "both": np.r_[b.reference_idx, random]}
                for mode in args.shots.split(","):
                    if mode == "reference" and draw:
                        continue  # the same 10 designs every draw
                    pick = picks[mode]
                    shots = {dev: Bunch(designs=b.designs[pick],
                                        latency=b.latency[dev].to_numpy()[pick], energy=None)}
                    adapted = cross.adapt(d, shots[dev].designs, shots[dev].latency)
                    for name, replace in (
                            ("cross_device", {"latency": adapted.predict}),
                            ("pipeline_correction", adapt_devices(res.models, table, shots)[dev][0])):
                        designs, _, _ = design_with_shots(opt, d, lam[:, None], replace)
                        r = regrets(data, f, designs)
                        records += [{"seed": seed, "device": dev, "draw": draw, "shots": mode,
                                     "adapter": name, "lambda": float(l_),
                                     "regret_true": float(v), "regret_true_zero_shot": float(z)}
                                    for l_, v, z in zip(lam, r, base)]
    df = pd.DataFrame(records)
    per_dev = df.groupby(["seed", "device", "shots", "adapter"]).regret_true.mean().unstack(
        ["shots", "adapter"])
    one = df[(df.draw == 0) & (df.adapter == "cross_device") & (df.shots == df.shots.iloc[0])]
    per_dev[("none", "zero-shot")] = one.groupby(["seed", "device"]).regret_true_zero_shot.mean(
        ).reindex(per_dev.index)
    pd.set_option("display.width", 200)
    print("\nMean true regret per device (zero-shot: the optimizer's forward pass):")
    print(per_dev.round(4).to_string())
    print("\nOver all (seed, device, draw, λ):")
    for (mode, name), part in df.groupby(["shots", "adapter"]):
        delta = part.regret_true - part.regret_true_zero_shot
        print(f"  {mode:<9} {name:<20} median {part.regret_true.median():.4f}  p90 "
              f"{part.regret_true.quantile(0.9):.4f}  mean {part.regret_true.mean():.4f}  "
              f"better than zero-shot {int((delta < -1e-12).sum())}, worse "
              f"{int((delta > 1e-12).sum())} of {len(part)}")
    if args.json:
        write_results(args.json, records, seeds=args.seeds, draws=args.draws)


if __name__ == "__main__":
    main()
