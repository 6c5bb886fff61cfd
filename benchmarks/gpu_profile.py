"""GPU profiling check: latency, energy and repeatability of NB201 designs on an NVIDIA GPU.

Run on a machine with an NVIDIA GPU, a CUDA build of torch and nvidia-ml-py::

    pip install -e ".[profile]"
    SKEDGE_DATA=/path/to/data python benchmarks/gpu_profile.py --out gpu_profile

For each batch size (1 and 64) it measures the 10 NB201 reference designs and
100 random designs with ``skedge.measure.measure`` on ``cuda``: 20 timed runs
per design, two rounds over the design list (``--rounds 2``), and the energy
per inference from NVML. It prints a table per (batch size, design set) and
writes ``summary.json`` next to the measurement CSVs. Every CSV is resumable:
rerunning the command continues where a killed run stopped.

Without the data home the reference designs are unknown; then 110 random
designs are measured and the table has one design set. ``--device cpu`` runs
the same protocol on this CPU (RAPL energy where readable), as a smoke test.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from skedge._torch import check_device
from skedge.measure import measure, open_energy_counter, repeatability


def _summary(frame, name):
    ok = frame[frame["status"] == "ok"]
    rep = repeatability(ok).iloc[0]
    energy = ok.get("energy_mj", None)
    has_energy = energy is not None and energy.notna().any()
    return {
        "designs": name,
        "n_designs": int(rep["n_designs"]),
        "n_failed": int((frame["status"] != "ok").sum()),
        "median_latency_ms": float(ok["latency_ms"].median()),
        "min_latency_ms": float(ok["latency_ms"].min()),
        "max_latency_ms": float(ok["latency_ms"].max()),
        "median_rel_iqr": float(rep["median_rel_iqr"]),
        "round_spearman": float(rep["round_spearman"]),
        "round_rel_diff": float(rep["round_rel_diff"]),
        "median_energy_mj": float(energy.median()) if has_energy else None,
        "idle_power_w": float(ok["idle_power_w"].median()) if has_energy else None,
        "energy_counter": str(ok["energy_counter"].iloc[0]) if has_energy else None,
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="gpu_profile", help="folder for the CSVs and summary.json")
    p.add_argument("--device", default="cuda")
    p.add_argument("--n", type=int, default=100, help="random designs besides the references")
    p.add_argument("--batch-sizes", default="1,64")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--no-energy", action="store_true")
    p.add_argument("--energy-seconds", type=float, default=0.5)
    p.add_argument("--cuda-graphs", action="store_true", help="also time CUDA-graph replays")
    p.add_argument("--data-home", default=None)
    args = p.parse_args(argv)
    try:
        return _run(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"gpu_profile: error: {exc}", file=sys.stderr)
        return 2


def _run(args):
    check_device(args.device)  # no GPU: say so before anything else
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        from skedge.datasets import load_reference_designs

        load_reference_designs("nb201", data_home=args.data_home)
        with_reference, n = True, args.n
    except FileNotFoundError as exc:
        print(f"no reference designs ({exc}); measuring {args.n + 10} random designs",
              file=sys.stderr)
        with_reference, n = False, args.n + 10
    energy = not args.no_energy
    if energy:
        try:
            open_energy_counter(str(check_device(args.device)))
        except ValueError as exc:  # say why, and measure latency only
            print(f"energy not measured: {exc}", file=sys.stderr)
            energy = False
    rows, started = [], time.time()
    graphs = [False, True] if args.cuda_graphs else [False]
    for batch in [int(b) for b in args.batch_sizes.split(",")]:
        for use_graphs in graphs:
            tag = f"b{batch}" + ("_graphs" if use_graphs else "")
            path = out / f"nb201_{args.device.replace(':', '')}_{tag}.csv"
            kwargs = {"n": n, "include_reference": with_reference, "random_state": 0,
                          "batch_size": batch, "warmup": args.warmup, "repeats": args.repeats,
                          "rounds": args.rounds, "device": args.device, "cuda_graphs": use_graphs,
                          "resume": True, "data_home": args.data_home, "progress": True,
                          "energy_seconds": args.energy_seconds}
            frame = measure("nb201", path, energy=energy, **kwargs)
            ref = frame["reference_rank"].notna()
            for name, part in [("reference", frame[ref]), ("random", frame[~ref])]:
                if len(part):
                    rows.append({"batch_size": batch, "cuda_graphs": use_graphs,
                                 **_summary(part, name), "file": str(path)})
    gpu = frame["gpu_name" if args.device.startswith("cuda") else "cpu_model"].iloc[0]
    summary = {
        "command": " ".join([sys.executable, *sys.argv]),
        "device": args.device, "hardware": gpu, "torch": torch.__version__,
        "cuda": torch.version.cuda, "seconds": round(time.time() - started, 1), "rows": rows,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    head = (f"{'batch':>5} {'graphs':>6} {'designs':>9} {'n':>4} {'median ms':>10} "
            f"{'IQR/med':>8} {'r1~r2 rho':>9} {'|r1-r2|':>8} {'mJ/inf':>9} {'idle W':>7}")
    print(f"{gpu} (torch {torch.__version__}, CUDA {torch.version.cuda})")
    print(head)
    for r in rows:
        mj = "-" if r["median_energy_mj"] is None else f"{r['median_energy_mj']:.3f}"
        idle = "-" if r["idle_power_w"] is None else f"{r['idle_power_w']:.1f}"
        print(f"{r['batch_size']:>5} {r['cuda_graphs']!s:>6} {r['designs']:>9} "
              f"{r['n_designs']:>4} {r['median_latency_ms']:>10.3f} {r['median_rel_iqr']:>8.3f} "
              f"{r['round_spearman']:>9.3f} {100 * r['round_rel_diff']:>7.1f}% {mj:>9} "
              f"{idle:>7}")
    print(f"wrote {out / 'summary.json'}")
    return 0 if np.isfinite([r["median_latency_ms"] for r in rows]).all() else 1


if __name__ == "__main__":
    sys.exit(main())
