"""How far measurements alone take a latency predictor on real NAS-Bench-201, and where skedge's shots stand.

``skedge evaluate-optimizer --shots 0,10`` leaves a true regret that shots
barely move on some held-out devices. This benchmark asks whether any
latency predictor could do better from the same data. For each held-out
device (its whole hardware group left out of training), two predictors of
its latency are compared:

* **skedge**: a :class:`~skedge.crossdevice.CrossDeviceRegressor` (defaults;
  its signature the space's 10 reference designs) fitted on every measured
  cell of the other hardware, adapted to the reference designs plus ``k``
  random cells of the device (``k`` = 0, 10, 50);
* **measured cells only**: a
  :class:`~sklearn.ensemble.HistGradientBoostingRegressor` on the one-hot
  designs, fitted to the log latency of ``n`` random cells of the device
  alone (``n`` = 200, 1,000, 5,000), i.e. what measuring a third of the space
  would give without any other device.

Each is scored by the Spearman correlation on the cells it did not see and by
its **latency-only regret floor**: the mean true regret, over 24 λ log-spaced
over the optimizer's range, of the exhaustive optimum under the *true*
accuracy and the *predicted* latency (so only the latency's errors count).
A device whose latencies are whole milliseconds is flagged: its truth ties
many designs. With ``--draws N`` skedge's random cells are drawn N times per
``k`` and the worst draw is reported too (a few measurements should never
rank a device much worse than the reference designs alone).

Usage::

    SKEDGE_DATA=../shared/data python benchmarks/bench_nb201_latency_ceiling.py \
        [--seeds 0,1] [--draws 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from _results import write_results
from scipy.stats import spearmanr
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.preprocessing import OneHotEncoder

from skedge.datasets import floor_latency, load_nb201
from skedge.devices import DEVICE_FEATURES, hardware_groups
from skedge.evaluation._shots import fit_cross_device
from skedge.optimize import LAMBDA_RANGE

#: The evaluation's default held-out devices, then a second split of other hardware.
SPLITS = ("pixel3,gold_6240,titanx_1,samsung_a50",
          "essential_ph_1,silver_4114,2080ti_1,samsung_s7")
SHOTS = (0, 10, 50)
CELLS = (200, 1000, 5000)


def latency_floor(acc, lat_true, lat_pred, refs, lambdas):
    """Mean true regret of the optimum under the true accuracy and the predicted latency."""
    norm_t = np.exp(np.log(lat_true[refs]).mean())
    norm_p = np.exp(np.log(lat_pred[refs]).mean())
    f_true = -acc[None] / 100 + lambdas[:, None] * lat_true[None] / norm_t
    f_pred = -acc[None] / 100 + lambdas[:, None] * lat_pred[None] / norm_p
    mine = f_true[np.arange(len(lambdas)), f_pred.argmin(axis=1)]
    return float(np.mean((mine - f_true.min(axis=1)) / np.ptp(f_true, axis=1)))


def score(acc, lat, pred, seen, refs, lambdas):
    """Number of measured cells, Spearman on the others, latency-only regret floor."""
    unseen = np.setdiff1d(np.arange(len(lat)), seen)
    return {"n_measured": len(seen),
            "spearman_unseen": float(spearmanr(pred[unseen], lat[unseen])[0]),
            "latency_only_floor": latency_floor(acc, lat, pred, refs, lambdas)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--splits", default=";".join(SPLITS),
                   help="held-out device lists, ';' between splits, ',' between devices")
    p.add_argument("--draws", type=int, default=1,
                   help="draws of skedge's random cells per k > 0 (default 1)")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    bench = load_nb201(sources=("help",))
    latency = floor_latency(bench.latency)
    devices = list(latency.columns)
    group_of = hardware_groups(bench.devices.loc[devices])
    refs = np.asarray(bench.reference_idx)
    lambdas = np.geomspace(*LAMBDA_RANGE, 24)
    onehot = OneHotEncoder(sparse_output=False).fit_transform(bench.designs)
    records = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        for split in args.splits.split(";"):
            tests = split.split(",")
            held = {group_of[d] for d in tests}
            train = [d for d in devices if group_of[d] not in held]
            t0 = time.perf_counter()
            # The shot model of `skedge evaluate-optimizer --shots`, fitted the same way.
            model = fit_cross_device(bench.space, bench, latency, train, refs, seed)
            print(f"seed {seed}: fitted on {len(train)} devices in "
                  f"{time.perf_counter() - t0:.0f}s", flush=True)
            rng = np.random.RandomState(seed)
            for dev in tests:
                lat = latency[dev].to_numpy()
                whole_ms = bool(np.allclose(lat, np.round(lat)))
                others = np.setdiff1d(np.arange(len(lat)), refs)
                row = {"seed": seed, "device": dev, "whole_ms": whole_ms}
                feats = bench.devices.loc[dev, list(DEVICE_FEATURES)]
                for k in SHOTS:
                    for draw in range(args.draws if k else 1):
                        shots = np.union1d(refs, rng.choice(others, k, replace=False))
                        adapted = model.adapt(feats, bench.designs[shots], lat[shots], name=dev)
                        pred = adapted.predict(bench.designs)
                        records.append({**row, "predictor": "skedge", "draw": draw,
                                        **score(bench.accuracy, lat, pred, shots, refs, lambdas)})
                for n in CELLS:
                    cells = rng.choice(len(lat), n, replace=False)
                    gbm = HistGradientBoostingRegressor(random_state=seed)
                    gbm.fit(onehot[cells], np.log(lat[cells]))
                    pred = np.exp(gbm.predict(onehot))
                    records.append({**row, "predictor": "measured cells only",
                                    **score(bench.accuracy, lat, pred, cells, refs, lambdas)})
    df = pd.DataFrame(records)
    table = df.pivot_table(index=["device", "whole_ms"], columns=["predictor", "n_measured"],
                           values="latency_only_floor", aggfunc="mean")
    rho = df.pivot_table(index=["device", "whole_ms"], columns=["predictor", "n_measured"],
                         values="spearman_unseen", aggfunc="mean")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print("\nlatency-only regret floor (mean over seeds)")
        print(table.round(4).to_string())
        print("\nSpearman on unseen cells (mean over seeds)")
        print(rho.round(3).to_string())
        if args.draws > 1:
            mine = df[df.predictor == "skedge"]
            worst = mine.groupby(["device", "n_measured"]).agg(
                spearman_worst=("spearman_unseen", "min"), floor_worst=("latency_only_floor", "max"))
            print(f"\nskedge, worst of {args.draws} draws and the seeds")
            print(worst.unstack().round(4).to_string())
    if args.json:
        write_results(args.json, records, seeds=args.seeds, splits=args.splits,
                      draws=args.draws)


if __name__ == "__main__":
    main()
