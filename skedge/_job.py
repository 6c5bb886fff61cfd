"""``skedge run`` and ``skedge apply``: the end-to-end job and its production half.

``skedge run`` needs no download (it uses the embedded simulator,
:func:`skedge.datasets.make_edge_benchmark`) or runs on the real NAS-Bench-201
data with ``--data-home``:

1. get a benchmark and hold out a few devices of different kinds as *unseen*;
2. fit the accuracy, latency and energy predictors on the other devices
   (zero-shot pipelines: a device is known by its spec sheet only);
3. fit the :class:`~skedge.optimize.AmortizedDesignOptimizer` on
   (device, λ) rows sampled around the training devices;
4. for each unseen device and a few λ, compare the optimizer's design with a
   per-device search (:class:`~skedge.optimize.SearchBaseline`) on the same
   predicted objective: predicted metrics, objective gap, time taken, and the
   *true* metrics of both designs (simulated, or measured for NAS-Bench-201);
5. save the models with joblib plus a ``manifest.json`` to ``--out``, and a
   Pareto-front plot per unseen device.

``skedge apply`` loads such a folder and answers new devices, read from a CSV
or JSON file of :data:`~skedge.devices.DEVICE_FEATURES`: one design per
(device, λ), the λ-swept predicted Pareto front (``--front``), or the most
accurate design within a latency budget (``--max-latency``).
"""

from __future__ import annotations

import contextlib
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.utils import Bunch, check_random_state

from ._checks import check_writable, load_model_file
from ._job_checks import (
    MODEL_CHECKS,
    MODEL_KINDS,
    check_counts,
    check_lambda_energy,
    check_models_folder,
    check_names,
    check_split,
    label_lambdas,
    log_ticks,
    next_steps,
    parse_lambdas,
    parse_test,
)
from ._job_shots import adapt_devices, read_shots, zero_vs_few_shot
from .devices import DEVICE_FEATURES, DEVICE_KINDS

__all__ = ["SIZES", "apply_job", "design_summary", "load_models", "register", "run_job"]

#: Model and search sizes of ``skedge run``. "default" takes about 1-3 minutes
#: on 2 CPU cores (see :func:`run_job`); "fast" is a smoke test of a few seconds.
SIZES = {
    "default": {
        "n_designs": 2000,
        "n_devices": 40,
        "n_test": 4,
        "lambdas": (0.01, 0.05, 0.2),
        "accuracy": {"hidden_layer_sizes": (128, 128), "max_epochs": 100, "batch_size": 256,
                     "learning_rate": 2e-3},
        "performance": {"hidden_layer_sizes": (256, 256), "max_epochs": 8, "batch_size": 512,
                        "learning_rate": 2e-3},
        "optimizer": {"hidden_layer_sizes": (256, 256), "n_steps": 1000, "batch_size": 256,
                      "n_augment": 4096},
        "n_optimizer_rows": 1024,
        "search": {"population_size": 100, "n_cycles": 500, "sample_size": 25,
                   "n_offspring": 25},
    },
    "fast": {
        "n_designs": 240,
        "n_devices": 12,
        "n_test": 2,
        "lambdas": (0.02, 0.2),
        "accuracy": {"hidden_layer_sizes": (32,), "max_epochs": 5, "batch_size": 128},
        "performance": {"hidden_layer_sizes": (32,), "max_epochs": 3, "batch_size": 256},
        "optimizer": {"hidden_layer_sizes": (32,), "n_steps": 20, "batch_size": 64,
                      "n_augment": 128, "n_estimators": 2, "distill": 256,
                      "distill_refine": 1},
        "n_optimizer_rows": 64,
        "search": {"population_size": 20, "n_cycles": 40, "sample_size": 5, "n_offspring": 10},
    },
}

DEFAULT_LAMBDA_ENERGY = 0.02
DEFAULT_OUT = "skedge_models"
MANIFEST = "manifest.json"
MANIFEST_FORMAT = "skedge-job-models"
MODEL_FILES = ("accuracy", "latency", "energy", "optimizer")

# Unseen devices of the simulator: one per family, in this order (varied kinds first).
_TEST_FAMILY_ORDER = ("phone_big_cpu", "edge_gpu", "npu", "desktop_cpu", "phone_dsp",
                      "phone_gpu", "board_cpu", "desktop_gpu", "fpga_bitserial",
                      "phone_little_cpu")
# Unseen devices of the real NAS-Bench-201 job (HELP settings), in this order.
_NB201_TEST_DEVICES = ("pixel3", "gold_6240", "titanx_1", "samsung_s7", "2080ti_32",
                       "silver_4210r")


# ---------------------------------------------------------------- command line
def register(subparsers):
    """Add the ``run`` and ``apply`` sub-commands."""
    p = subparsers.add_parser(
        "run",
        help="end-to-end job: predictors + amortized optimizer, compared with search",
        description=(
            "Fit accuracy/latency/energy predictors and the amortized design optimizer on "
            "simulated edge devices (no download; or real NAS-Bench-201 data with "
            "--data-home), compare its designs with per-device search on held-out devices, "
            "and save the models for `skedge apply`."
        ),
    )
    p.add_argument("--space", default=None,
                   help="design space: ofa-quant (default), ofa, nb201 or fbnet; "
                        "nb201 with --data-home")
    p.add_argument("--data-home", default=None, metavar="DIR",
                   help="run on the real NAS-Bench-201 data in DIR instead of the simulator")
    p.add_argument("--n-designs", type=int, default=None,
                   help="designs to train on (default 2000; 240 with --fast)")
    p.add_argument("--n-devices", type=int, default=None,
                   help="simulated device settings (default 40; 12 with --fast)")
    p.add_argument("--test-devices", default=None, metavar="N|NAMES",
                   help="unseen devices: a number (default 4; 2 with --fast) or "
                        "comma-separated device names")
    p.add_argument("--lambdas", default=None, metavar="L1,L2,...",
                   help="latency weights λ_lat to compare at (default 0.01,0.05,0.2)")
    p.add_argument("--lambda-energy", type=float, default=DEFAULT_LAMBDA_ENERGY,
                   help=f"fixed energy weight λ_en (default {DEFAULT_LAMBDA_ENERGY}; "
                        "ignored without energy)")
    p.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                   help=f"folder for the fitted models (default {DEFAULT_OUT}/); it must be "
                        "empty or new unless --overwrite")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the models of an earlier run in --out (refused without it)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: the small networks gain little from more, "
                        "and lose much on a busy machine)")
    p.add_argument("--fast", action="store_true",
                   help="tiny sizes: a smoke test of a few seconds, not a meaningful result")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run_job)

    a = subparsers.add_parser(
        "apply",
        help="designs for new devices from the models saved by `skedge run`",
        description=(
            "Load the models saved by `skedge run` and give, for each device of a CSV or "
            "JSON file of device features, the optimizer's design per λ with its "
            "predicted metrics; optionally the predicted Pareto front and the most "
            "accurate design within a latency budget."
        ),
    )
    a.add_argument("--models", default=DEFAULT_OUT, metavar="DIR",
                   help=f"folder written by `skedge run` (default {DEFAULT_OUT}/)")
    a.add_argument("--device", required=True, metavar="FILE",
                   help="CSV or JSON file with one row/object per device and the columns "
                        + ", ".join(DEVICE_FEATURES) + " (kind by name or code; "
                        "missing values allowed)")
    a.add_argument("--lambdas", default=None, metavar="L1,L2,...",
                   help="latency weights λ_lat (default: those of the run)")
    a.add_argument("--lambda-energy", type=float, default=None,
                   help="energy weight λ_en (default: that of the run)")
    a.add_argument("--out", default=None, metavar="CSV",
                   help="write the designs to this CSV file (replaced if it exists)")
    a.add_argument("--front", default=None, metavar="CSV",
                   help="write the λ-swept predicted Pareto front of each device to this CSV "
                        "file (replaced if it exists)")
    a.add_argument("--max-latency", type=float, default=None, metavar="MS",
                   help="also give the most accurate design with predicted latency <= MS")
    a.add_argument("--max-energy", type=float, default=None, metavar="MJ",
                   help="also give the most accurate design with predicted energy <= MJ")
    a.add_argument("--space", default=None,
                   help="refuse models fitted for another design space")
    a.add_argument("--shots", default=None, metavar="CSV",
                   help="measurements written by `skedge measure` on some of the --device "
                        "devices (any designs, the reference designs included or not): their "
                        "latency (and energy) predictors are adapted to the shots and their "
                        "designs chosen under the adapted predictions")
    a.add_argument("--quiet", action="store_true", help="print only the designs")
    a.set_defaults(func=apply_job)


# ------------------------------------------------------------------- helpers
class _Progress:
    """Numbered progress lines with the wall time of each step."""

    def __init__(self, n_steps, quiet):
        self.n_steps, self.quiet, self.i = n_steps, quiet, 0
        self.seconds = {}

    @contextlib.contextmanager
    def step(self, key, text):
        self.i += 1
        if not self.quiet:
            print(f"[{self.i}/{self.n_steps}] {text} ...", end="", flush=True)
        start = time.perf_counter()
        yield
        self.seconds[key] = time.perf_counter() - start
        if not self.quiet:
            print(f" {self.seconds[key]:.1f} s", flush=True)

    def say(self, text=""):
        if not self.quiet:
            print(text, flush=True)


def _space_key(space):
    """The name :func:`skedge.spaces.get_space` rebuilds ``space`` from."""
    if space.name == "ofa" and getattr(space, "quantize", False):
        return "ofa-quant"
    return space.name


def _format_seconds(s):
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    if s < 1.0:
        return f"{s * 1e3:.1f} ms"
    return f"{s:.2f} s"


def design_summary(space, designs):
    """Short readable form of designs, for tables (full strings are long for OFA).

    OFA: ``r<resolution> d<depth per stage> <MMACs>M`` plus, with bit-widths,
    the mean weight/activation bits over the used blocks (``w4.8/a6.0b``).
    NAS-Bench-201: the op of each edge grouped by target node (``x`` none,
    ``s`` skip, ``1`` conv 1x1, ``3`` conv 3x3, ``p`` avg pool) and MMACs.

    Examples
    --------
    >>> from skedge._job import design_summary
    >>> ops, macs = design_summary("nb201", [[3, 3, 3, 1, 1, 3]])[0].split()
    >>> ops, macs.endswith("M")
    ('3|33|ss3', True)
    """
    from .spaces import OFASpace, get_space

    space = get_space(space)
    X = space.validate(designs)
    mmacs = space.macs(X) / 1e6
    dicts = space.to_dicts(X)
    out = []
    if isinstance(space, OFASpace):
        active = space.active_blocks(X)
        n_stages = sum(1 for k in dicts[0] if k.startswith("d") and k[1:].isdigit())
        for d, act, m in zip(dicts, active, mmacs):
            depth = "".join(str(d[f"d{s}"]) for s in range(n_stages))
            text = f"r{d['r']} d{depth} {m:.0f}M"
            if space.quantize:
                used = np.flatnonzero(act)
                wb = np.mean([d[f"wb{i}"] for i in used])
                ab = np.mean([d[f"ab{i}"] for i in used])
                text += f" w{wb:.1f}/a{ab:.1f}b"
            out.append(text)
    elif space.name == "nb201":
        abbr = {"none": "x", "skip_connect": "s", "nor_conv_1x1": "1", "nor_conv_3x3": "3",
                "avg_pool_3x3": "p"}
        for d, m in zip(dicts, mmacs):
            ops = [abbr[d[f"e{i}"]] for i in range(6)]
            out.append(f"{ops[0]}|{''.join(ops[1:3])}|{''.join(ops[3:])} {m:.0f}M")
    else:
        for s, m in zip(space.to_strings(X), mmacs):
            out.append((s if len(s) <= 24 else s[:23] + "~") + f" {m:.0f}M")
    return out


def _legend(space):
    if space.name == "ofa":
        bits = ", mean weight/activation bits" if getattr(space, "quantize", False) else ""
        return f"design: r resolution, d blocks per stage, MMACs{bits}"
    if space.name == "nb201":
        return ("design: op per edge by node 1|2|3 (x none, s skip, 1 conv1x1, 3 conv3x3, "
                "p pool), MMACs")
    return "design: leading choices, MMACs"


def _kind_name(code):
    return DEVICE_KINDS[int(code)] if np.isfinite(code) else "unknown"


def _versions():
    import sklearn
    import torch

    from ._version import __version__

    out = {"skedge": __version__, "scikit-learn": sklearn.__version__,
           "torch": torch.__version__, "numpy": np.__version__, "pandas": pd.__version__,
           "python": platform.python_version()}
    try:
        import skorch

        out["skorch"] = skorch.__version__
    except ImportError:  # pragma: no cover - skorch is a dependency
        pass
    return out


# ------------------------------------------------------------------ the data
def _simulated_data(space, n_designs, n_devices, test, random_state):
    """Simulator benchmark, unseen devices, and the truth function of any design."""
    from .datasets import make_edge_benchmark

    bench = make_edge_benchmark(space, n_designs=n_designs, n_devices=n_devices,
                                random_state=random_state)
    names = list(bench.latency.columns)
    if isinstance(test, list):
        check_names(test, names)
        tests = test
    else:
        rng = check_random_state(random_state)
        counts = bench.family.value_counts()
        # Families with a device left for training first: an unseen device, not an unseen family.
        order = ([f for f in _TEST_FAMILY_ORDER if counts.get(f, 0) >= 2]
                 + [f for f in _TEST_FAMILY_ORDER if counts.get(f, 0) == 1])
        if test > len(order):
            raise ValueError(
                f"--test-devices {test}: the unseen devices are one per device family, and "
                f"this benchmark has {len(order)} families; ask for at most {len(order)} or "
                "name the devices."
            )
        tests = []
        for fam in order[:test]:
            members = list(bench.family.index[bench.family == fam])
            tests.append(members[rng.randint(len(members))])
    check_split(tests, names)
    train = [d for d in names if d not in tests]
    sim_devices = Bunch(devices=bench.devices.loc[tests], params=bench.device_params.loc[tests])

    def truth(designs, devices):
        """Noise-free simulated accuracy, latency and energy of designs[i] on devices[i]."""
        true = make_edge_benchmark(bench.space, designs=designs, devices=sim_devices, noise=0.0,
                                   accuracy_noise=0.0, random_state=random_state)
        rows = np.arange(len(designs))
        cols = true.latency.columns.get_indexer(devices)
        return {"accuracy": true.accuracy,
                "latency": true.latency.to_numpy()[rows, cols],
                "energy": true.energy.to_numpy()[rows, cols]}

    family = {d: bench.family[d] for d in names}
    return Bunch(bench=bench, space=bench.space, train_designs=np.arange(len(bench.designs)),
                 train_devices=train, test_devices=tests, truth=truth, family=family,
                 source="simulator", has_energy=True,
                 description=f"simulated benchmark: {len(bench.designs)} designs x "
                             f"{len(names)} devices ({bench.family.nunique()} families)")


def _nb201_data(space, data_home, n_designs, test, random_state):
    """Real NAS-Bench-201 (HELP latencies): unseen devices held out with their hardware group."""
    from .datasets import load_nb201
    from .devices import hardware_groups
    from .spaces import get_space

    if get_space(space).name != "nb201":
        raise ValueError(
            f"--data-home runs on the real NAS-Bench-201 data: use --space nb201, not {space!r} "
            "(the real FBNet/OFA data have no accuracies)."
        )
    bench = load_nb201(sources=("help",), data_home=data_home)
    # Degenerate cells read ~0 ms on some devices; floor each device at its 1st percentile.
    bench.latency = bench.latency.clip(lower=bench.latency.quantile(0.01), axis=1)
    names = list(bench.latency.columns)
    if isinstance(test, list):
        check_names(test, names)
        tests = test
    else:
        tests = [d for d in _NB201_TEST_DEVICES if d in names]
        if test > len(tests):
            raise ValueError(
                f"--test-devices {test}: the real-data run holds out at most {len(tests)} "
                f"devices by number ({', '.join(tests)}); name others to hold out more."
            )
        tests = tests[:test]
    check_split(tests, names)
    groups = hardware_groups(bench.devices.loc[names])
    held = {groups[d] for d in tests}
    train = [d for d in names if groups[d] not in held]
    if len(train) < len(tests):
        raise ValueError(
            f"--test-devices: holding out {tests} with their hardware groups leaves "
            f"{len(train)} training device(s); hold out fewer."
        )
    n = len(bench.designs)
    if n_designs < 1:
        raise ValueError(f"--n-designs must be a positive integer, got {n_designs}.")
    rng = check_random_state(random_state)
    rows = np.sort(rng.choice(n, size=min(n_designs, n), replace=False))
    position = {row.tobytes(): i for i, row in enumerate(bench.designs)}
    latency = bench.latency.to_numpy()

    def truth(designs, devices):
        """Measured accuracy and (floored) latency of designs[i] on devices[i]."""
        idx = np.array([position[np.asarray(x, dtype=np.int64).tobytes()] for x in designs])
        cols = bench.latency.columns.get_indexer(devices)
        return {"accuracy": bench.accuracy[idx], "latency": latency[idx, cols]}

    family = {d: _kind_name(bench.devices.loc[d, "kind"]) for d in names}
    return Bunch(bench=bench, space=bench.space, train_designs=rows, train_devices=train,
                 test_devices=tests, truth=truth, family=family, source="nb201",
                 has_energy=False,
                 description=f"NAS-Bench-201 (CIFAR-10 accuracy, HELP latencies): {n} cells x "
                             f"{len(names)} device settings; {len(train)} settings train "
                             f"(whole hardware groups of the unseen devices held out)")


def _train_view(data, target):
    """Pair table of the training designs on the training devices."""
    from .datasets import to_pairs

    b = data.bench
    view = Bunch(space=b.space, designs=b.designs[data.train_designs],
                 devices=b.devices, latency=b.latency.iloc[data.train_designs],
                 energy=None if b.get("energy") is None else b.energy.iloc[data.train_designs])
    return to_pairs(view, devices=data.train_devices, target=target)


# ------------------------------------------------------------------- run
def run_job(args):
    """Run ``skedge run`` (see the module docstring); returns the exit status.

    With the default sizes (:data:`SIZES`) on an idle 2-core machine, the
    steps took about: simulation 2 s, predictors 60 s, optimizer 30 s with
    one network (the default optimizer now trains four and distills them: a
    few times longer), comparison 20 s, saving and plots 3 s (measured
    numbers are printed).
    """
    import torch  # noqa: F401 - fail early on a broken install

    from ._torch import torch_threads

    sizes = SIZES["fast" if args.fast else "default"]
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be at least 1, got {args.threads}.")
    real = args.data_home is not None
    space = args.space or ("nb201" if real else "ofa-quant")
    n_designs = sizes["n_designs"] if args.n_designs is None else args.n_designs
    n_devices = sizes["n_devices"] if args.n_devices is None else args.n_devices
    lambdas = parse_lambdas(args.lambdas, sizes["lambdas"])
    lam_en = check_lambda_energy(args.lambda_energy)
    test = parse_test(args.test_devices, sizes["n_test"])
    if not real:
        check_counts(n_designs, n_devices, test)
    out = Path(args.out)
    check_models_folder(out, overwrite=args.overwrite)
    progress = _Progress(5, args.quiet)
    start = time.perf_counter()
    with torch_threads(args.threads):
        with progress.step("data", "Loading NAS-Bench-201" if real else
                           f"Simulating {n_designs} designs x {n_devices} devices ({space})"):
            if real:
                data = _nb201_data(space, args.data_home, n_designs, test, args.random_state)
            else:
                data = _simulated_data(space, n_designs, n_devices, test, args.random_state)
        progress.say(f"      {data.description}")
        progress.say("      unseen devices: " + ", ".join(
            f"{d} ({data.family[d]})" for d in data.test_devices))
        models = _fit_predictors(data, sizes, args.random_state, progress)
        optimizer = _fit_optimizer(data, models, sizes, args.random_state, progress)
        with progress.step("compare", f"Designing for {len(data.test_devices)} unseen devices x "
                           f"{len(lambdas)} λ: optimizer vs search"):
            results = _compare(data, models, optimizer, lambdas, lam_en, sizes,
                               args.random_state)
            shot_table = zero_vs_few_shot(data, models, optimizer, lambdas, lam_en,
                                          args.random_state)
        with progress.step("save", f"Saving models and plots to {out}/"):
            files = _save(out, data, models, optimizer, lambdas, lam_en, space, args,
                          progress.seconds)
            results.to_csv(out / "results.csv", index=False)
            shot_table.to_csv(out / "shots.csv", index=False)
            files += ["results.csv", "shots.csv"]
            plots = _plot_fronts(out, data, optimizer, results, lam_en)
    total = time.perf_counter() - start
    _print_results(data, results, lam_en)
    _print_shots(data, shot_table)
    print(f"\nSaved to {out}/: " + ", ".join(files + plots))
    if not plots:
        print("No Pareto-front plots: matplotlib is not installed (pip install matplotlib, or "
              "pip install -e \".[plot]\" in the skedge folder).")
    print(f"Total {total:.0f} s.\n\n" + next_steps(out))
    return 0


def _fit_predictors(data, sizes, random_state, progress):
    from .datasets import to_pairs
    from .pipelines import make_accuracy_pipeline, make_performance_pipeline

    b, space = data.bench, data.space
    rows = data.train_designs
    X, y, _ = _train_view(data, "latency")
    what = "accuracy, latency and energy" if data.has_energy else "accuracy and latency"
    with progress.step("predictors", f"Fitting {what} predictors on "
                       f"{len(data.train_devices)} devices "
                       f"({len(rows)} designs, {len(y):,} pairs)"):
        acc = make_accuracy_pipeline(space, random_state=random_state, **sizes["accuracy"])
        acc.fit(b.designs[rows], b.accuracy[rows])
        lat = make_performance_pipeline(space, random_state=random_state,
                                        **sizes["performance"])
        lat.fit(X, y)
        en = None
        if data.has_energy:
            Xe, ye, _ = _train_view(data, "energy")
            en = make_performance_pipeline(space, random_state=random_state,
                                           **sizes["performance"])
            en.fit(Xe, ye)
    # Zero-shot quality on the unseen devices: all their measured designs.
    from scipy.stats import spearmanr

    lines = []
    for d in data.test_devices:
        parts = []
        for name, est, unit in (("latency", lat, "ms"), ("energy", en, "mJ")):
            if est is None:
                continue
            Xt, yt, _ = to_pairs(b, devices=[d], target=name)
            p = est.predict(Xt)
            rho = spearmanr(p, yt)[0]
            err = np.median(np.abs(p / yt - 1)) * 100
            parts.append(f"{name} rank corr {rho:.2f}, median error {err:.0f}%")
        lines.append(f"      {d}: " + "; ".join(parts))
    progress.say("      zero-shot predictions on the unseen devices (all their designs):")
    for line in lines:
        progress.say(line)
    return Bunch(accuracy=acc, latency=lat, energy=en)


def _fit_optimizer(data, models, sizes, random_state, progress):
    from .optimize import AmortizedDesignOptimizer, sample_optimizer_inputs

    n_lambdas = 2 if models.energy is not None else 1
    params = dict(sizes["optimizer"])
    train = data.bench.devices.loc[data.train_devices]
    with progress.step("optimizer", f"Fitting the amortized optimizer on (device, λ) rows "
                       f"around {len(train)} training devices ({params['n_steps']} steps)"):
        rows = sample_optimizer_inputs(train, sizes["n_optimizer_rows"], n_lambdas=n_lambdas,
                                       random_state=random_state)
        opt = AmortizedDesignOptimizer(space=data.space, accuracy=models.accuracy,
                                       latency=models.latency, energy=models.energy,
                                       random_state=random_state, **params)
        opt.fit(rows)
    return opt


def _rows(data, devices, lambdas, lam_en, with_energy):
    D = data.bench.devices.loc[devices, list(DEVICE_FEATURES)].to_numpy(np.float64)
    out, names, lams = [], [], []
    for d, row in zip(devices, D):
        for lam in lambdas:
            out.append(np.r_[row, lam, lam_en] if with_energy else np.r_[row, lam])
            names.append(d)
            lams.append(lam)
    return np.array(out), names, np.array(lams)


def _compare(data, models, opt, lambdas, lam_en, sizes, random_state):
    """Optimizer vs search on every (unseen device, λ): one table row per method."""
    from .optimize import SearchBaseline

    obj = opt.objective_
    with_energy = models.energy is not None
    X, devices, lams = _rows(data, data.test_devices, lambdas, lam_en, with_energy)
    D = X[:, : obj.n_device_columns]

    opt.predict(X[:1])  # warm-up: first-call costs are not per-row costs
    opt_designs, opt_seconds = [], []
    for row in X:
        t0 = time.perf_counter()
        opt_designs.append(opt.predict(row[None])[0])
        opt_seconds.append(time.perf_counter() - t0)
    opt_designs = np.array(opt_designs)
    # Many rows in one call share the fixed costs (input checks, encoders).
    t0 = time.perf_counter()
    opt.predict(X)
    batched = (time.perf_counter() - t0) / len(X)

    search = SearchBaseline(space=data.space, accuracy=models.accuracy, latency=models.latency,
                            energy=models.energy, random_state=random_state, **sizes["search"])
    found = search.fit(X).search(X)

    frames = []
    for method, designs, f, seconds in (
        ("optimizer", opt_designs, obj.value(opt_designs, X), np.array(opt_seconds)),
        (f"search ({found.method})", found.designs, found.objective, found.search_time),
    ):
        m = obj.metrics(designs, D)
        true = data.truth(designs, devices)
        frame = pd.DataFrame({
            "device": devices,
            "kind": [_kind_name(v) for v in D[:, 0]],
            "lambda_latency": lams,
        })
        if with_energy:
            frame["lambda_energy"] = lam_en
        frame["method"] = method
        frame["design"] = data.space.to_strings(designs)
        frame["summary"] = design_summary(data.space, designs)
        frame["accuracy"] = m["accuracy"]
        frame["latency_ms"] = m["latency"]
        if with_energy:
            frame["energy_mJ"] = m["energy"]
        frame["objective"] = f
        frame["seconds"] = seconds
        frame["true_accuracy"] = true["accuracy"]
        frame["true_latency_ms"] = true["latency"]
        if with_energy:
            frame["true_energy_mJ"] = true["energy"]
        frame["order"] = np.arange(len(frame))
        frames.append(frame)
    frames[0]["gap"] = frames[0]["objective"].to_numpy() - frames[1]["objective"].to_numpy()
    frames[1]["gap"] = np.nan
    results = pd.concat(frames, ignore_index=True)
    results = results.sort_values(["order", "method"], kind="stable").drop(columns="order")
    results = results.reset_index(drop=True)
    results.attrs["batched_seconds"] = batched
    return results


def _print_results(data, results, lam_en):
    with_energy = "energy_mJ" in results
    space = data.space
    print(f"\nDesigns for unseen devices (predicted = what the models believe; "
          f"{'simulated' if data.source == 'simulator' else 'measured'} = the truth).")
    lam_text = "λ_lat" + (f" (with λ_en = {lam_en:g})" if with_energy else "")
    print("objective f = -acc/100 + λ_lat·lat/lat_ref(d)"
          + (" + λ_en·en/en_ref(d)" if with_energy else "")
          + f", minimized; {lam_text}:\n  a design as slow as a typical one on this device "
            "must buy 100·λ_lat accuracy points.")
    print(f"{_legend(space)}.\ngap = f(optimizer) - f(search): > 0 when the search found a "
          "better design; time: per (device, λ).")
    cols = ["λ_lat", "method", "design", "acc %", "lat ms"] + (["en mJ"] if with_energy else [])
    cols += ["f", "gap", "time", "true acc %", "true lat ms"]
    cols += ["true en mJ"] if with_energy else []
    for device, block in results.groupby("device", sort=False):
        kind = block["kind"].iloc[0]
        fam = data.family.get(device, kind)
        print(f"\n{device}  ({kind}{'' if fam == kind else ', family ' + fam}; never seen "
              "in training)")
        table = _predicted_columns(block, with_energy)
        table["method"] = block["method"].str.replace(r" \(.*\)", "", regex=True)
        table["gap"] = block["gap"].map(lambda v: "" if np.isnan(v) else f"{v:+.4f}")
        table["time"] = block["seconds"].map(_format_seconds)
        table["true acc %"] = block["true_accuracy"].map("{:.1f}".format)
        table["true lat ms"] = block["true_latency_ms"].map(_fmt_metric)
        if with_energy:
            table["true en mJ"] = block["true_energy_mJ"].map(_fmt_metric)
        print(table[cols].to_string(index=False))
    opt = results[results["method"] == "optimizer"]
    srch = results[results["method"] != "optimizer"]
    speed = srch["seconds"].median() / max(opt["seconds"].median(), 1e-9)
    batched = results.attrs.get("batched_seconds")
    print(f"\nOptimizer vs {srch['method'].iloc[0]}: mean objective gap {opt['gap'].mean():+.4f} "
          f"(max {opt['gap'].max():+.4f}).")
    print(f"Time per (device, λ): optimizer {_format_seconds(opt['seconds'].median())}"
          + (f" ({_format_seconds(batched)} per row in one batched call)" if batched else "")
          + f" vs search {_format_seconds(srch['seconds'].median())} ({speed:,.0f}x faster).")
    acc_err = np.mean(np.abs(results["accuracy"] - results["true_accuracy"]))
    err = [f"accuracy {acc_err:.1f} points"]
    for name in ("latency_ms", "energy_mJ"):
        if name in results:
            rel = np.abs(results[name] / results["true_" + name] - 1)
            err.append(f"{name.split('_')[0]} {np.median(rel) * 100:.0f}%")
    print("Prediction error on these designs (median over the table): " + ", ".join(err) + ".")


def _print_shots(data, table):
    k = int(table["shots"].max())
    truth = "simulated" if data.source == "simulator" else "measured"
    print(f"\nZero-shot vs {k}-shot designs for the unseen devices: {k} measured designs per "
          "device adapt its latency (and energy) predictor, and the design is chosen under "
          f"the adapted predictions (as `skedge apply --shots`). Metrics are {truth} (the "
          "truth); f is the true objective (lower is better).")
    shown = pd.DataFrame({
        "device": table["device"], "λ_lat": table["lambda_latency"].map("{:g}".format),
        "shots": table["shots"], "design": design_summary(data.space, data.space.from_strings(
            table["design"])),
        "true acc %": table["true_accuracy"].map("{:.1f}".format),
        "true lat ms": table["true_latency_ms"].map(_fmt_metric)})
    if "true_energy_mJ" in table:
        shown["true en mJ"] = table["true_energy_mJ"].map(_fmt_metric)
    shown["true f"] = table["true_objective"].map("{:.4f}".format)
    order = np.lexsort([table["shots"], table["lambda_latency"],
                        pd.factorize(table["device"])[0]])
    print(shown.iloc[order].to_string(index=False))
    f0 = table[table["shots"] == 0]["true_objective"].to_numpy()
    fk = table[table["shots"] == k]["true_objective"].to_numpy()
    print(f"{k} shots vs none: true objective better on {int((fk < f0 - 1e-12).sum())}, equal "
          f"on {int((np.abs(fk - f0) <= 1e-12).sum())}, worse on {int((fk > f0 + 1e-12).sum())} "
          f"of {len(f0)} (device, λ); mean change {np.mean(fk - f0):+.4f}.")


def _predicted_columns(block, with_energy):
    """Printable λ, design and predicted metrics of a block of design rows (same index)."""
    shown = pd.DataFrame({
        "λ_lat": block["lambda_latency"].map("{:g}".format),
        "design": block["summary"],
        "acc %": block["accuracy"].map("{:.1f}".format),
        "lat ms": block["latency_ms"].map(_fmt_metric),
    })
    if with_energy:
        shown["en mJ"] = block["energy_mJ"].map(_fmt_metric)
    shown["f"] = block["objective"].map("{:.4f}".format)
    return shown


def _fmt_metric(v):
    if not np.isfinite(v):
        return "nan"
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"


def _save(out, data, models, optimizer, lambdas, lam_en, space, args, seconds):
    import joblib

    out.mkdir(parents=True, exist_ok=True)
    files = []
    for name in MODEL_FILES:
        est = optimizer if name == "optimizer" else models[name]
        path = out / f"{name}.joblib"
        if est is None:
            # A stale file from an earlier run with energy must not be mistaken for this run's.
            path.unlink(missing_ok=True)
            continue
        joblib.dump(est, path)
        files.append(path.name)
    obj = optimizer.objective_
    manifest = {
        "format": MANIFEST_FORMAT,
        "format_version": 1,
        "space": _space_key(data.space),
        "space_repr": repr(data.space),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": _versions(),
        "data": data.source,
        "description": data.description,
        "device_columns": list(DEVICE_FEATURES),
        "lambda_columns": obj.lambda_names,
        "energy": models.energy is not None,
        "files": {name: f"{name}.joblib" for name in MODEL_FILES
                  if (optimizer if name == "optimizer" else models[name]) is not None},
        "lambdas": list(lambdas),
        "lambda_energy": lam_en if models.energy is not None else None,
        "train_devices": list(data.train_devices),
        "test_devices": list(data.test_devices),
        "random_state": args.random_state,
        "fast": bool(args.fast),
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    files.append(MANIFEST)
    return files


def _truth_of_front(data, designs, device):
    try:
        return data.truth(designs, [device] * len(designs))
    except KeyError:  # pragma: no cover - every NB-201 cell is measured
        return None


def _plot_fronts(out, data, optimizer, results, lam_en):
    """One PNG per unseen device: the predicted front of a λ_lat sweep and its designs' truth."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        return []
    from .optimize import pareto_front, plot_pareto_front
    from .optimize._pareto import DEFAULT_LAMBDAS

    obj = optimizer.objective_
    with_energy = obj.n_lambdas == 2
    for stale in out.glob("pareto_*.png"):  # plots of an earlier run's devices
        stale.unlink()
    lambdas = (np.column_stack([DEFAULT_LAMBDAS, np.full(len(DEFAULT_LAMBDAS), lam_en)])
               if with_energy else DEFAULT_LAMBDAS)
    files = []
    for device in data.test_devices:
        d = data.bench.devices.loc[device, list(DEVICE_FEATURES)].to_numpy(np.float64)
        front = pareto_front(optimizer, d, lambdas=lambdas)
        fig, ax = plt.subplots(figsize=(6, 4.2))
        plot_pareto_front(front, ax=ax, label="optimizer front (predicted)")
        true = _truth_of_front(data, data.space.from_strings(front["design"]), device)
        if true is not None:
            ax.scatter(true["latency"], true["accuracy"], facecolors="none", edgecolors="C0",
                       label="same designs (true)", zorder=2)
        mine = results[results["device"] == device]
        srch = mine[mine["method"] != "optimizer"]
        ax.scatter(srch["latency_ms"], srch["accuracy"], marker="x", color="C3", zorder=4,
                   label="search designs (predicted)")
        label_lambdas(ax, srch["latency_ms"], srch["accuracy"], srch["lambda_latency"],
                      color="C3")
        label_lambdas(ax, front["latency"], front["accuracy"], front["lambda_latency"])
        ax.set_xscale("log")
        # Plain numbers at 1-2-5 steps (finer when few fit): a front often spans less
        # than a decade, where log ticks read "8x10^0" or leave no label at all.
        ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(log_ticks(*ax.get_xlim())))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("latency (ms)")
        ax.set_ylabel("accuracy (%)")
        title = f"{device} (unseen)"
        if with_energy:
            title += f", λ_en = {lam_en:g}"
        ax.set_title(title)
        ax.legend(fontsize=7)
        fig.tight_layout()
        name = f"pareto_{device}.png"
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        files.append(name)
    return files


# ------------------------------------------------------------------- apply
def load_models(path):
    """Load the folder written by ``skedge run``.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    models : Bunch
        ``accuracy``, ``latency``, ``energy`` (None without energy),
        ``optimizer`` and ``manifest`` (dict).

    Raises
    ------
    FileNotFoundError
        The folder, its manifest or a model file is missing.
    ValueError
        The manifest is not a skedge job manifest, or the optimizer was
        fitted for another space than the manifest says.
    CommandFailed
        A model file is truncated, damaged or holds another kind of model.
    """
    from .spaces import get_space

    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(
            f"models directory {path} does not exist; create it with `skedge run --out {path}`."
        )
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise FileNotFoundError(
            f"{path} holds no {MANIFEST}: it is not a folder written by `skedge run`."
        )
    try:
        manifest = json.loads(mpath.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{mpath} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"{mpath} is not a skedge job manifest (format {MANIFEST_FORMAT!r}).")
    files = manifest.get("files", {})
    needed = ["accuracy", "latency", "optimizer"] + (["energy"] if manifest.get("energy") else [])
    missing = [files.get(k, f"{k}.joblib") for k in needed
               if not (path / files.get(k, f"{k}.joblib")).is_file()]
    if missing:
        raise FileNotFoundError(
            f"models directory {path} is incomplete: {', '.join(missing)} missing; "
            "rerun `skedge run`."
        )
    out = Bunch(manifest=manifest, energy=None)
    for key in needed:
        out[key] = load_model_file(path / files.get(key, f"{key}.joblib"),
                                   check=MODEL_CHECKS[key], expected=MODEL_KINDS[key])
    space = get_space(manifest["space"])
    if get_space(out.optimizer.space) != space:
        raise ValueError(
            f"{path}: the optimizer was fitted for {get_space(out.optimizer.space)!r} but the "
            f"manifest says {space!r}."
        )
    out.space = space
    return out


def apply_job(args):
    """Run ``skedge apply`` (see the module docstring); returns the exit status."""
    from .datasets import read_device_file
    from .optimize import best_under_constraints, pareto_front
    from .optimize._adapted import AdaptedObjective, design_with_shots
    from .spaces import get_space

    device_path = Path(args.device)
    for option, value in (("--out", args.out), ("--front", args.front)):
        if value:
            check_writable(value, option)
    table = read_device_file(device_path)
    models = load_models(args.models)
    man, opt = models.manifest, models.optimizer
    space = models.space
    if args.space is not None and get_space(args.space) != space:
        raise ValueError(
            f"the models in {args.models} were fitted for {man['space']!r}, not {args.space!r}."
        )
    shots = read_shots(args.shots, space, table) if args.shots else {}
    obj = opt.objective_
    if obj.n_device_columns != len(DEVICE_FEATURES):
        raise ValueError(
            f"the optimizer takes {obj.n_device_columns} device columns; skedge apply "
            f"supplies the {len(DEVICE_FEATURES)} DEVICE_FEATURES only."
        )
    lambdas = parse_lambdas(args.lambdas, man.get("lambdas") or SIZES["default"]["lambdas"])
    with_energy = obj.n_lambdas == 2
    lam_en = None
    if with_energy:
        lam_en = check_lambda_energy(
            man.get("lambda_energy", DEFAULT_LAMBDA_ENERGY) if args.lambda_energy is None
            else args.lambda_energy)
    D = table[list(DEVICE_FEATURES)].to_numpy(np.float64)
    rows, names, lams = [], [], []
    for name, d in zip(table.index, D):
        for lam in lambdas:
            rows.append(np.r_[d, lam, lam_en] if with_energy else np.r_[d, lam])
            names.append(name)
            lams.append(lam)
    X = np.array(rows)
    obj.split(X)  # clear error on NaN features the latency predictor cannot impute
    start = time.perf_counter()
    designs = opt.predict(X)
    seconds = time.perf_counter() - start
    m = obj.metrics(designs, X[:, : obj.n_device_columns])
    refs = obj.references(X[:, : obj.n_device_columns])
    adapted = adapt_devices(models, table, shots)
    for name, (replace, _) in adapted.items():
        mine = np.flatnonzero(np.asarray(names) == name)
        d = X[mine[0], : obj.n_device_columns]
        designs[mine], _, _ = design_with_shots(opt, d, X[mine, obj.n_device_columns:], replace)
        sub = AdaptedObjective(obj, replace)
        for k, v in sub.metrics(designs[mine], d).items():
            m[k][mine] = v
        refs[mine] = sub.references(X[mine, : obj.n_device_columns])
    frame = pd.DataFrame({"device": names, "lambda_latency": lams})
    if with_energy:
        frame["lambda_energy"] = lam_en
    frame["design"] = space.to_strings(designs)
    frame["summary"] = design_summary(space, designs)
    frame["accuracy"] = m["accuracy"]
    frame["latency_ms"] = m["latency"]
    if with_energy:
        frame["energy_mJ"] = m["energy"]
    frame["objective"] = obj.value_from_metrics(m, X[:, obj.n_device_columns:], refs)
    if not args.quiet:
        print(f"Models: {args.models} ({man['space']}, {man.get('data', '?')}, created "
              f"{man.get('created', '?')}); {len(table)} device(s) from {device_path}; "
              f"{len(X)} designs in {_format_seconds(seconds)}.")
        print(_legend(space) + ". Metrics are predicted"
              + (" (adapted to the shots where a device has them)." if adapted else "."))
        for _, line in adapted.values():
            print("Shots: " + line)
    for device, block in frame.groupby("device", sort=False):
        kind = _kind_name(table.loc[device, "kind"])
        print(f"\n{device} ({kind})" + (f", λ_en = {lam_en:g}" if with_energy else ""))
        print(_predicted_columns(block, with_energy).to_string(index=False))
        if args.max_latency is not None or args.max_energy is not None:
            best = best_under_constraints(
                opt, table.loc[device, list(DEVICE_FEATURES)].to_numpy(np.float64),
                max_latency=args.max_latency, max_energy=args.max_energy,
                lambdas=_sweep_lambdas(with_energy, lam_en),
                random_state=man.get("random_state", 0))
            budget = ", ".join(t for t in (
                f"latency <= {args.max_latency:g} ms" if args.max_latency is not None else "",
                f"energy <= {args.max_energy:g} mJ" if args.max_energy is not None else "")
                if t)
            metrics = f"acc {best.accuracy:.1f} %, lat {_fmt_metric(best.latency)} ms" + (
                f", en {_fmt_metric(best.energy)} mJ" if with_energy else "")
            how = ("exact: every design of the space scored" if best.exact else
                   f"best of {best.n_candidates:,} candidate designs scored by the predictors: "
                   "the optimizer's λ sweep and an evolutionary search around it, not the "
                   "whole space")
            print(f"most accurate with {budget}: {design_summary(space, [best.design])[0]} "
                  f"({metrics}; {how})")
            extra = {"device": device, "lambda_latency": np.nan, "design": best.design_string,
                     "summary": design_summary(space, [best.design])[0],
                     "accuracy": best.accuracy, "latency_ms": best.latency,
                     "budget": budget}
            if with_energy:
                extra.update(lambda_energy=np.nan, energy_mJ=best.energy)
            frame = pd.concat([frame, pd.DataFrame([extra])], ignore_index=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(args.out, index=False)
        if not args.quiet:
            print(f"\nDesigns written to {args.out} (full design strings in column 'design').")
    if args.front:
        fronts = []
        for device in table.index:
            d = table.loc[device, list(DEVICE_FEATURES)].to_numpy(np.float64)
            front = pareto_front(opt, d, lambdas=_sweep_lambdas(with_energy, lam_en))
            front = front.rename(columns={"latency": "latency_ms", "energy": "energy_mJ"})
            front.insert(0, "device", device)
            fronts.append(front)
        fronts = pd.concat(fronts, ignore_index=True)
        Path(args.front).parent.mkdir(parents=True, exist_ok=True)
        fronts.to_csv(args.front, index=False)
        if not args.quiet:
            sizes = fronts.groupby("device", sort=False).size()
            print(f"Predicted Pareto fronts (λ_lat sweep) written to {args.front}: "
                  + ", ".join(f"{k} {v} designs" for k, v in sizes.items()) + ".")
    return 0


def _sweep_lambdas(with_energy, lam_en):
    from .optimize._pareto import DEFAULT_LAMBDAS

    if with_energy:
        return np.column_stack([DEFAULT_LAMBDAS, np.full(len(DEFAULT_LAMBDAS), lam_en)])
    return DEFAULT_LAMBDAS


if __name__ == "__main__":  # pragma: no cover
    from .cli import main

    sys.exit(main(["run"] + sys.argv[1:]))
