"""Checks and hints of ``skedge run`` / ``skedge apply`` that run before any long work.

Kept apart from :mod:`skedge._job` (the job itself): parsed option values (λ,
unseen devices), argument counts, the models folder (never silently overwritten), the model-file types ``apply``
accepts, the "Next:" hint a run ends with, and the λ labels of its plots.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ._checks import check_writable
from .devices import DEVICE_KINDS

__all__ = ["MODEL_CHECKS", "MODEL_KINDS", "check_counts", "check_lambda_energy",
           "check_models_folder", "check_names", "check_split", "label_lambdas", "log_ticks",
           "next_steps", "parse_lambdas", "parse_test"]

#: What each model file of a run folder must hold, and how that is checked.
MODEL_KINDS = {
    "accuracy": "a fitted accuracy predictor (an estimator with predict)",
    "latency": "a fitted latency predictor (an estimator with predict)",
    "energy": "a fitted energy predictor (an estimator with predict)",
    "optimizer": "a fitted skedge AmortizedDesignOptimizer",
}


def _is_predictor(obj):
    return hasattr(obj, "predict") and hasattr(obj, "fit")


def _is_optimizer(obj):
    from .optimize import AmortizedDesignOptimizer

    return isinstance(obj, AmortizedDesignOptimizer) and hasattr(obj, "objective_")


MODEL_CHECKS = {"accuracy": _is_predictor, "latency": _is_predictor, "energy": _is_predictor,
                "optimizer": _is_optimizer}

#: The device of the README's ``skedge apply`` example (unknown values: null).
EXAMPLE_DEVICE = {
    "device": "my_phone", "kind": "phone_cpu", "batch_size": 1, "precision_bits": 8,
    "peak_gflops": 300, "mem_bandwidth_gbs": 30, "compute_units": 4, "clock_ghz": 2.8,
    "on_chip_mb": 4, "mem_gb": 8, "tdp_w": None, "process_nm": 7, "release_year": 2020,
}


def check_counts(n_designs, n_devices, test):
    """Check ``--n-designs``, ``--n-devices`` and a numeric ``--test-devices`` of a simulated run.

    Raises
    ------
    ValueError
        A count is too small, or more devices would be held out than trained on.
    """
    if n_designs < 10:
        raise ValueError(f"--n-designs must be at least 10, got {n_designs}.")
    if n_devices < 2:
        raise ValueError(f"--n-devices must be at least 2, got {n_devices}.")
    if isinstance(test, int) and test > n_devices // 2:
        raise ValueError(
            f"--test-devices {test} would hold out {test} of {n_devices} devices; hold out at "
            f"most {n_devices // 2}, so that most devices train the predictors (or raise "
            "--n-devices)."
        )


def check_models_folder(out, *, overwrite):
    """Refuse a models folder that holds files unless ``overwrite``; check it is writable.

    Raises
    ------
    ValueError
        ``out`` is a file, cannot be written, or is not empty and ``overwrite``
        is False.
    """
    out = Path(out)
    check_writable(out, "--out", directory=True)
    held = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if held and not overwrite:
        shown = ", ".join(held[:4]) + (", ..." if len(held) > 4 else "")
        raise ValueError(
            f"--out {out} already holds files ({shown}); pass --overwrite to replace the "
            "models there, or choose another folder with --out."
        )


def next_steps(out):
    """The hint a run ends with: the device JSON ``skedge apply`` expects, and the command."""
    example = json.dumps(EXAMPLE_DEVICE)
    return (
        "Next: describe your device in a JSON file (unknown values: null; kind one of "
        f"{', '.join(DEVICE_KINDS)}), e.g. my_phone.json:\n"
        f"  {example}\n"
        "and get its designs:\n"
        f"  skedge apply --models {out} --device my_phone.json --lambdas 0.01,0.05,0.2"
    )


def label_lambdas(ax, latency, accuracy, lambdas, *, color="C0", max_labels=8):
    """Write λ_lat next to plotted points (at most ``max_labels``, spread along latency)."""
    order = np.argsort(np.asarray(latency, dtype=np.float64), kind="stable")
    step = max(1, -(-len(order) // max_labels))
    for i in order[::step]:
        ax.annotate(f"λ={np.asarray(lambdas)[i]:.2g}",
                    (np.asarray(latency)[i], np.asarray(accuracy)[i]),
                    xytext=(4, -9), textcoords="offset points", fontsize=6, color=color)


def log_ticks(low, high):
    """Tick values for a log axis from ``low`` to ``high``: 1-2-5 steps, finer when few fit.

    Examples
    --------
    >>> from skedge._job_checks import log_ticks
    >>> log_ticks(4.1, 31.0)
    [5.0, 10.0, 20.0]
    >>> log_ticks(4.4, 7.6)
    [5.0, 6.0, 7.0]
    """
    exponents = range(int(np.floor(np.log10(low))) - 1, int(np.ceil(np.log10(high))) + 1)
    for mantissas in ((1, 2, 5), (1, 1.5, 2, 3, 5, 7), tuple(range(1, 10)),
                      tuple(np.arange(10, 100) / 10)):
        ticks = [float(f"{m * 10.0**e:.6g}") for e in exponents for m in mantissas]
        ticks = [t for t in ticks if low <= t <= high]
        if len(ticks) >= 3:
            return ticks
    return ticks


def parse_lambdas(text, default, option="--lambdas"):
    """Comma-separated λ values of ``option`` (``default`` when None); finite and >= 0."""
    if text is None:
        return [float(v) for v in default]
    try:
        values = [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise ValueError(
            f"{option} must be comma-separated numbers such as 0.01,0.05,0.2; got {text!r}."
        ) from None
    if not values or any(not np.isfinite(v) or v < 0 for v in values):
        raise ValueError(f"{option} must hold finite numbers >= 0; got {text!r}.")
    return values


def check_lambda_energy(value, option="--lambda-energy"):
    """``value`` as a float, refused unless finite and >= 0."""
    if value is None or not np.isfinite(value) or value < 0:
        raise ValueError(f"{option} must be a finite number >= 0; got {value!r}.")
    return float(value)


def check_names(tests, names):
    """Refuse unseen-device names the benchmark does not have."""
    unknown = [d for d in tests if d not in names]
    if unknown:
        raise ValueError(f"--test-devices: unknown device {unknown[0]!r}; this benchmark has "
                         f"{names}.")


def check_split(tests, names):
    """Refuse an empty or repeated hold-out, or one larger than half the devices."""
    if not tests:
        raise ValueError("--test-devices: hold out at least one device.")
    if len(set(tests)) != len(tests):
        raise ValueError(f"--test-devices lists a device twice: {tests}.")
    if len(tests) > len(names) // 2:
        raise ValueError(
            f"--test-devices holds out {len(tests)} of {len(names)} devices; hold out at most "
            f"{len(names) // 2}, so that most devices train the predictors."
        )


def parse_test(text, default):
    """``--test-devices``: a count (int) or a list of device names."""
    if text is None:
        return default
    text = str(text).strip()
    if text.isdigit():
        if int(text) < 1:
            raise ValueError("--test-devices must be at least 1.")
        return int(text)
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise ValueError(f"--test-devices must be a number or device names, got {text!r}.")
    return names
