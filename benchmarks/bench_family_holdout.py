"""New kinds of hardware: hold out whole device families of the simulator.

For every device family of :func:`skedge.datasets.make_edge_benchmark`, a
:class:`skedge.CrossDeviceRegressor` with its default parameters is fitted on
the devices of all *other* families, then adapted to each device of the held-out
family from its spec-sheet row (0 shots) and from k measured designs (the 10
reference designs, then random ones). Scores are Spearman rank correlations on
the designs not granted as shots; the known-device mix ``linear_mix``
(``KnownDeviceMix(method="nnls")`` on the same shots) is the baseline.

Usage::

    python benchmarks/bench_family_holdout.py [--space nb201] [--shots 0,10,50]
        [--n-designs 2000] [--n-devices 40] [--random-state 0] [--json out.json]

It prints a table (mean over each family's devices) and writes the
per-device records as JSON.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from skedge import CrossDeviceRegressor
from skedge.datasets import make_edge_benchmark, to_pairs
from skedge.evaluation import granted_shots
from skedge.fewshot import KnownDeviceMix


def run(space="nb201", shots=(0, 10, 50), n_designs=2000, n_devices=40, random_state=0,
        verbose=True):
    bench = make_edge_benchmark(space, n_designs=n_designs, n_devices=n_devices,
                                random_state=random_state)
    lat = bench.latency
    records = []
    for family in sorted(bench.family.unique()):
        test = list(bench.family.index[bench.family == family])
        train = [d for d in lat.columns if d not in test]
        t0 = time.perf_counter()
        X, y, groups = to_pairs(bench, devices=train)
        model = CrossDeviceRegressor(space=space, reference_designs=bench.designs[
            bench.reference_idx], random_state=random_state).fit(X, y, groups=groups)
        fit_s = time.perf_counter() - t0
        for dev in test:
            truth = lat[dev].to_numpy()
            everything = np.arange(len(truth))
            for k in shots:
                given = granted_shots(everything, bench.reference_idx, k, k)
                rest = np.setdiff1d(everything, given)
                args = (bench.designs[given], truth[given]) if k else ()
                device = model.adapt(bench.devices.loc[dev], *args)
                pred = device.predict(bench.designs[rest])
                rec = dict(family=family, device=dev, shots=k, method="skedge",
                           spearman=float(spearmanr(pred, truth[rest]).statistic))
                records.append(rec)
                if k:
                    known = lat[train].to_numpy()
                    mix = KnownDeviceMix(method="nnls").fit(known[given], truth[given])
                    records.append(dict(rec, method="linear_mix", spearman=float(spearmanr(
                        mix.predict(known[rest]), truth[rest]).statistic)))
        if verbose:
            print(f"{family}: {len(test)} devices held out, fit {fit_s:.0f} s", flush=True)
    return records


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--space", default="nb201")
    parser.add_argument("--shots", default="0,10,50")
    parser.add_argument("--n-designs", type=int, default=2000)
    parser.add_argument("--n-devices", type=int, default=40)
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--json", default="family_holdout.json")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    records = run(args.space, tuple(int(k) for k in args.shots.split(",")), args.n_designs,
                  args.n_devices, args.random_state)
    df = pd.DataFrame(records)
    table = df.pivot_table(index="family", columns=["shots", "method"], values="spearman")
    summary = pd.concat([table, table.mean().to_frame("MEAN").T, table.min().to_frame("MIN").T])
    print(summary.to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"\n{len(records)} records in {time.perf_counter() - t0:.0f} s")
    with open(args.json, "w") as fh:
        json.dump(records, fh, indent=1)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
