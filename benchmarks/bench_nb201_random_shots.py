"""Do a few random measurements ever rank an unseen NAS-Bench-201 device worse than its spec sheet?

A user who measures whatever designs they have at hand (not the reference
designs) adapts :class:`~skedge.crossdevice.CrossDeviceRegressor` to them.
For each held-out split (whole hardware groups held out, as in ``skedge
evaluate-optimizer``: split A is its default, B and C the README's other
splits) and seed, this benchmark fits the model with its defaults on every
measured cell of the training devices (HELP's NB201 settings), then adapts
it to each test device from its spec-sheet row alone (0 shots) and from its
row plus k random cells, ``--draws`` times per k, with
``zero_shot_blend=True`` and with its default (``False``). It reports the Spearman
correlation over all 15,625 cells, and how many (device, draw) fall more
than 0.005 below the device's 0-shot figure.

Usage::

    SKEDGE_DATA=../shared/data python benchmarks/bench_nb201_random_shots.py \
        [--seeds 0,1] [--shots 5,10,20] [--draws 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from _results import write_results
from scipy.stats import spearmanr

from skedge.datasets import floor_latency, load_nb201
from skedge.devices import DEVICE_FEATURES, hardware_groups
from skedge.evaluation import DEFAULT_TEST_DEVICES
from skedge.evaluation._predictors import signature_designs
from skedge.evaluation._shots import fit_cross_device

SPLITS = {"A": DEFAULT_TEST_DEVICES,
          "B": ("essential_ph_1", "silver_4114", "2080ti_1", "samsung_s7"),
          "C": ("1080ti_32", "silver_4210r", "titanxp_256")}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--shots", default="5,10,20")
    p.add_argument("--draws", type=int, default=5)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    shots = [int(k) for k in args.shots.split(",")]
    bench = load_nb201(sources=("help",))
    latency = floor_latency(bench.latency)
    devices = list(latency.columns)
    groups = hardware_groups(bench.devices.loc[devices])
    sig = signature_designs(bench)
    records, start = [], time.perf_counter()
    for seed in seeds:
        for split, tests in SPLITS.items():
            held = {groups[d] for d in tests}
            train = [d for d in devices if groups[d] not in held]
            model = fit_cross_device(bench.space, bench, latency, train, sig, seed)
            for dev in tests:
                y = latency[dev].to_numpy()
                feats = bench.devices.loc[dev, list(DEVICE_FEATURES)]
                zero = spearmanr(model.adapt(feats).predict(bench.designs), y).statistic
                rng = np.random.RandomState(seed)
                for k in shots:
                    for draw in range(args.draws):
                        s = rng.choice(len(y), size=k, replace=False)
                        model.set_params(zero_shot_blend=True)
                        device = model.adapt(feats, bench.designs[s], y[s], name=dev)
                        rho = spearmanr(device.predict(bench.designs), y).statistic
                        model.set_params(zero_shot_blend=False)
                        plain = model.adapt(feats, bench.designs[s], y[s], name=dev)
                        rho_plain = spearmanr(plain.predict(bench.designs), y).statistic
                        records.append({"seed": seed, "split": split, "device": dev, "shots": k,
                                        "draw": draw, "spearman_0": float(zero),
                                        "spearman": float(rho),
                                        "spearman_no_blend": float(rho_plain),
                                        "shot_weight": device.shot_weight_})
            print(f"seed {seed} split {split}: {time.perf_counter() - start:.0f}s", flush=True)
    df = pd.DataFrame(records)
    df["drop"] = df.spearman_0 - df.spearman
    df["drop_no_blend"] = df.spearman_0 - df.spearman_no_blend
    below = {"below_0_shot": ("drop", lambda d: int((d > 0.005).sum())),
             "below_no_blend": ("drop_no_blend", lambda d: int((d > 0.005).sum()))}
    table = df.groupby(["seed", "shots"]).agg(
        spearman_0=("spearman_0", "mean"), spearman=("spearman", "mean"),
        spearman_no_blend=("spearman_no_blend", "mean"), **below, n=("drop", "size"),
        worst_drop=("drop", "max"), worst_no_blend=("drop_no_blend", "max"),
        mean_shot_weight=("shot_weight", "mean"))
    print(table.to_string(float_format=lambda x: f"{x:.4f}"))
    if args.json:
        write_results(args.json, records, seeds=seeds, shots=shots, draws=args.draws)


if __name__ == "__main__":
    main()
