"""``skedge run``: the end-to-end job, its models saved for ``skedge apply``.

``skedge run`` needs no download (it uses the embedded simulator,
:func:`skedge.datasets.make_edge_benchmark`) or runs on the real NAS-Bench-201
data with ``--data-home``. The work is :func:`skedge.workflow.run_workflow`
(data, predictors, optimizer, comparison with search); this command checks the
options before any long work, prints the stages and the tables
(:mod:`skedge._cli._report`), saves the models with
:func:`skedge.persistence.save_models_folder` (the safe format, or pickles
with ``--model-format joblib``) plus ``results.csv`` and ``shots.csv`` to
``--out``, and a Pareto-front plot per unseen device (:mod:`skedge._cli._plots`).
"""

from __future__ import annotations

import time
from pathlib import Path

from .._torch import torch_threads
from ..persistence import (
    DEFAULT_MODEL_FORMAT,
    MODEL_FORMATS,
    check_models_folder,
    save_models_folder,
)
from ..workflow import (
    DEFAULT_LAMBDA_ENERGY,
    SIZES,
    check_counts,
    check_lambda_energy,
    parse_lambdas,
    parse_test,
    run_workflow,
)
from ._plots import plot_fronts
from ._report import Progress, next_steps, print_results, print_shots

__all__ = ["DEFAULT_OUT", "register", "run_command"]

DEFAULT_OUT = "skedge_models"


def register(subparsers):
    """Add the ``run`` sub-command."""
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
    p.add_argument("--model-format", choices=MODEL_FORMATS, default=DEFAULT_MODEL_FORMAT,
                   help=f"how to save the models (default {DEFAULT_MODEL_FORMAT}): safe writes "
                        "weights and JSON, no pickle, for sharing and shipping; joblib writes "
                        "pickles, to load only yourself")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: the small networks gain little from more, "
                        "and lose much on a busy machine)")
    p.add_argument("--fast", action="store_true",
                   help="tiny sizes: a smoke test of a few seconds, not a meaningful result")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run_command)


def run_command(args):
    """Run ``skedge run`` (see the module docstring); returns the exit status."""
    sizes = SIZES["fast" if args.fast else "default"]
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be at least 1, got {args.threads}.")
    real = args.data_home is not None
    n_designs = sizes["n_designs"] if args.n_designs is None else args.n_designs
    n_devices = sizes["n_devices"] if args.n_devices is None else args.n_devices
    lambdas = parse_lambdas(args.lambdas, sizes["lambdas"])
    lam_en = check_lambda_energy(args.lambda_energy)
    test = parse_test(args.test_devices, sizes["n_test"])
    if not real:
        check_counts(n_designs, n_devices, test)
    out = Path(args.out)
    check_models_folder(out, overwrite=args.overwrite, model_format=args.model_format)
    progress = Progress(5, args.quiet)
    start = time.perf_counter()
    with torch_threads(args.threads):
        result = run_workflow(space=args.space, data_home=args.data_home, n_designs=n_designs,
                              n_devices=n_devices, test_devices=test, lambdas=lambdas,
                              lambda_energy=lam_en, fast=args.fast,
                              random_state=args.random_state, progress=progress)
        with progress.step(f"Saving models and plots to {out}/"):
            files = save_models_folder(out, result, model_format=args.model_format)
            result.results.to_csv(out / "results.csv", index=False)
            result.shots.to_csv(out / "shots.csv", index=False)
            files += ["results.csv", "shots.csv"]
            plots = plot_fronts(out, result.data, result.optimizer, result.results, lam_en)
    total = time.perf_counter() - start
    print_results(result.data, result.results, lam_en)
    print_shots(result.data, result.shots)
    print(f"\nSaved to {out}/: " + ", ".join(files + plots))
    if not plots:
        print("No Pareto-front plots: matplotlib is not installed (pip install matplotlib, or "
              "pip install -e \".[plot]\" in the skedge folder).")
    print(f"Total {total:.0f} s.\n\n" + next_steps(out))
    return 0
