"""``skedge apply``: designs for new devices from the models saved by ``skedge run``.

It loads such a folder (:func:`skedge.persistence.load_models`) and answers
new devices, read from a CSV or JSON file of
:data:`~skedge.devices.DEVICE_FEATURES`: one design per (device, λ)
(:func:`skedge.workflow.design_for_devices`, adapted to ``--shots`` where a
device has them), the λ-swept predicted Pareto front (``--front``), or the most
accurate design within a latency budget (``--max-latency``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .._checks import check_writable
from ..datasets import read_device_file
from ..devices import DEVICE_FEATURES
from ..optimize import best_under_constraints, pareto_front
from ..persistence import load_models
from ..spaces import get_space
from ..workflow import (
    DEFAULT_LAMBDA_ENERGY,
    SIZES,
    check_device_columns,
    check_lambda_energy,
    design_for_devices,
    design_summary,
    kind_name,
    parse_lambdas,
    read_shots,
    sweep_lambdas,
)
from ._report import fmt_metric, format_seconds, legend, predicted_columns
from .run import DEFAULT_OUT

__all__ = ["apply_command", "register"]


def register(subparsers):
    """Add the ``apply`` sub-command."""
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
                        "latency (and energy) predictors are adapted to the shots, the optimizer "
                        "designs for the adapted devices and the adapted predictions choose")
    a.add_argument("--quiet", action="store_true", help="print only the designs")
    a.set_defaults(func=apply_command)


def apply_command(args):
    """Run ``skedge apply`` (see the module docstring); returns the exit status."""
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
    check_device_columns(opt.objective_)
    lambdas = parse_lambdas(args.lambdas, man.get("lambdas") or SIZES["default"]["lambdas"])
    with_energy = opt.objective_.n_lambdas == 2
    lam_en = None
    if with_energy:
        lam_en = check_lambda_energy(
            man.get("lambda_energy", DEFAULT_LAMBDA_ENERGY) if args.lambda_energy is None
            else args.lambda_energy)
    frame, seconds, adapted = design_for_devices(models, table, lambdas=lambdas,
                                                 lambda_energy=lam_en, shots=shots)
    if not args.quiet:
        print(f"Models: {args.models} ({man['space']}, {man.get('data', '?')}, created "
              f"{man.get('created', '?')}); {len(table)} device(s) from {device_path}; "
              f"{len(frame)} designs in {format_seconds(seconds)}.")
        print(legend(space) + ". Metrics are predicted"
              + (" (adapted to the shots where a device has them)." if adapted else "."))
        for _, line in adapted.values():
            print("Shots: " + line)
    for device, block in frame.groupby("device", sort=False):
        kind = kind_name(table.loc[device, "kind"])
        print(f"\n{device} ({kind})" + (f", λ_en = {lam_en:g}" if with_energy else ""))
        print(predicted_columns(block, with_energy).to_string(index=False))
        if args.max_latency is not None or args.max_energy is not None:
            best = best_under_constraints(
                opt, table.loc[device, list(DEVICE_FEATURES)].to_numpy(np.float64),
                max_latency=args.max_latency, max_energy=args.max_energy,
                lambdas=sweep_lambdas(with_energy, lam_en),
                random_state=man.get("random_state", 0))
            budget = ", ".join(t for t in (
                f"latency <= {args.max_latency:g} ms" if args.max_latency is not None else "",
                f"energy <= {args.max_energy:g} mJ" if args.max_energy is not None else "")
                if t)
            metrics = f"acc {best.accuracy:.1f} %, lat {fmt_metric(best.latency)} ms" + (
                f", en {fmt_metric(best.energy)} mJ" if with_energy else "")
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
            front = pareto_front(opt, d, lambdas=sweep_lambdas(with_energy, lam_en))
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
