"""``skedge evaluate-predictors`` and ``skedge evaluate-optimizer``: the evaluation harnesses.

The work is :func:`skedge.evaluation.evaluate_predictors` and
:func:`skedge.evaluation.evaluate_optimizer`; these commands parse the
options, check them before any long work, and print the tables.
"""

from __future__ import annotations

import json
import time

from .._checks import check_writable
from ..evaluation import (
    DEFAULT_TEST_DEVICES,
    _predictors,
    evaluate_optimizer,
    evaluate_predictors,
    format_table,
)

__all__ = ["parse_shots", "register"]


def register(subparsers):
    """Add the ``evaluate-predictors`` and ``evaluate-optimizer`` sub-commands."""
    _register_predictors(subparsers)
    _register_optimizer(subparsers)


def parse_shots(text):
    """``"0,10"`` -> ``[0, 10]`` (sorted, distinct, non-negative)."""
    try:
        values = sorted({int(v) for v in str(text).split(",") if v.strip()})
    except ValueError:
        raise ValueError(f"--shots must be comma-separated integers, got {text!r}.") from None
    if not values or values[0] < 0:
        raise ValueError(f"--shots must list shot counts >= 0, got {text!r}.")
    return values


def _csv_list(text):
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def _register_predictors(subparsers):
    p = subparsers.add_parser(
        "evaluate-predictors",
        help="score latency predictors on unseen devices against baselines",
        description=_predictors.__doc__.split("\n\n")[0],
    )
    p.add_argument("--space", default="nb201", choices=["nb201", "fbnet", "ofa"])
    p.add_argument("--data-home", default=None, help="real data folder (default: $SKEDGE_DATA)")
    p.add_argument("--test-devices", default=None,
                   help="comma-separated device settings (default: leave-one-hardware-out)")
    p.add_argument("--train-devices", default=None,
                   help="comma-separated device settings to train on (default: all not held "
                        "out), e.g. HELP's published split")
    p.add_argument("--shots", default="0,10",
                   help="comma-separated numbers of measured designs per test device, "
                        "e.g. 0,5,10,20,50,100 for a learning curve")
    p.add_argument("--extra", action="append", default=None,
                   help="measurement CSV from `skedge measure` to join as devices (repeatable)")
    p.add_argument("--n-train-designs", type=int, default=None,
                   help="designs per training device (default: all it has measured)")
    p.add_argument("--epochs", type=int, default=None,
                   help="training epochs of the networks (default: the model's default)")
    p.add_argument("--random-state", type=int, default=0)
    p.add_argument("--n-jobs", type=int, default=2, help="folds trained in parallel")
    p.add_argument("--json", default=None, help="write the records to this file")
    p.add_argument("--diagnostics", action="store_true",
                   help="also report the networks alone and the oracle device mix")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_run_evaluate_predictors)


def _run_evaluate_predictors(args):
    t0 = time.perf_counter()
    records = evaluate_predictors(
        args.space,
        data_home=args.data_home,
        test_devices=_csv_list(args.test_devices),
        shots=tuple(parse_shots(args.shots)),
        extra=args.extra,
        n_train_designs=args.n_train_designs,
        train_devices=_csv_list(args.train_devices),
        model_params={} if args.epochs is None else {"max_epochs": args.epochs},
        diagnostics=args.diagnostics,
        n_jobs=args.n_jobs,
        random_state=args.random_state,
        verbose=0 if args.quiet else 1,
    )
    print(format_table(records))
    print(f"\n{len(records)} records in {time.perf_counter() - t0:.0f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(records, fh, indent=1)
        print(f"wrote {args.json}")
    return 0


def _register_optimizer(subparsers):
    p = subparsers.add_parser(
        "evaluate-optimizer",
        help="regret, Pareto hypervolume and speed of the amortized optimizer",
        description=(
            "Regret, Pareto hypervolume and speed of the amortized optimizer, with every "
            "model trained on non-test devices only: on the real NAS-Bench-201 data against "
            "the exhaustive optimum (nb201), or on the simulator against evolution "
            "(ofa-quant, fbnet). Prints a summary; --json keeps every (device, λ) record."
        ),
    )
    p.add_argument("--space", default="nb201", choices=["nb201", "ofa-quant", "fbnet"],
                   help="nb201: real NAS-Bench-201 data (needs --data-home or SKEDGE_DATA); "
                        "ofa-quant, fbnet: the simulator, compared with evolution "
                        "(default nb201)")
    p.add_argument("--data-home", default=None, metavar="DIR",
                   help="folder of the real data (default: SKEDGE_DATA or ~/skedge_data)")
    p.add_argument("--test-devices", default=None, metavar="NAMES",
                   help="nb201: comma-separated fully measured device settings held out with "
                        f"their hardware (default: {','.join(DEFAULT_TEST_DEVICES)}); "
                        "ofa-quant, fbnet: ignored (5 random held-out devices)")
    p.add_argument("--n-lambdas", type=int, default=24, metavar="N",
                   help="λ values per test device, log-spaced over the optimizer's range "
                        "(default 24)")
    p.add_argument("--n-estimators", type=int, default=None, metavar="N",
                   help="optimizer networks trained on the objective (teachers of the "
                        "distilled network; default: the optimizer's, 4)")
    p.add_argument("--refine", type=int, default=None, metavar="K",
                   help="greedy refinement rounds after the network at predict time "
                        "(default: the optimizer's, 0)")
    p.add_argument("--distill", type=int, default=None, metavar="N",
                   help="rows labelled by the refined ensemble to train the one network "
                        "predict uses (0: predict with the ensemble itself; default: the "
                        "optimizer's, 16384)")
    p.add_argument("--finetune", type=float, default=None, metavar="F",
                   help="straight-through fine-tuning of the distilled network, as a share "
                        "of the training steps (default: the optimizer's, 0)")
    p.add_argument("--shots", default="0", metavar="K1,K2,...",
                   help="nb201: shot counts; for each k, each test device's signature cells "
                        "plus k measured random cells adapt a cross-device latency predictor, "
                        "under which the optimizer's proposals are chosen (0: the signature "
                        "cells alone); the forward pass alone is always reported too "
                        "(e.g. 0,10; default 0)")
    p.add_argument("--shot-draws", type=int, default=5, metavar="N",
                   help="nb201: independent draws of the k random cells per device; a "
                        "device's figures are the mean over them (default 5)")
    p.add_argument("--random-state", type=int, default=0, metavar="SEED",
                   help="seed of the samples, the networks and the held-out devices (default 0)")
    p.add_argument("--json", default=None, metavar="FILE",
                   help="also write the summary and the per-(device, λ) records to this JSON file")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=_run_evaluate_optimizer)


def _run_evaluate_optimizer(args):
    if args.json:
        check_writable(args.json, "--json")
    for option, value, low in (("--n-lambdas", args.n_lambdas, 2),
                               ("--n-estimators", args.n_estimators, 1),
                               ("--refine", args.refine, 0),
                               ("--distill", args.distill, 0),
                               ("--finetune", args.finetune, 0),
                               ("--shot-draws", args.shot_draws, 1)):
        if value is not None and value < low:
            raise ValueError(f"{option} must be at least {low}, got {value}.")
    params = {k: v for k, v in (("n_estimators", args.n_estimators), ("refine", args.refine),
                                ("distill", args.distill), ("finetune", args.finetune))
              if v is not None}
    shots = parse_shots(args.shots)
    if args.space != "nb201" and shots != [0]:
        raise ValueError("--shots other than 0 needs --space nb201 (real data).")
    tests = [t for t in args.test_devices.split(",") if t] if args.test_devices else None
    summary, records = evaluate_optimizer(
        args.space, data_home=args.data_home, test_devices=tests, n_lambdas=args.n_lambdas,
        optimizer_params=params, shots=shots, shot_draws=args.shot_draws,
        random_state=args.random_state, verbose=0 if args.quiet else 1,
    )
    width = max(len(k) for k in summary)
    for key, value in summary.items():
        shown = f"{value:.4g}" if isinstance(value, float) else value
        print(f"{key:<{width}}  {shown}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({**summary, "records": records}, fh, indent=1)
        print(f"wrote {args.json}")
    return 0
