"""Checks of the workflow's inputs, all run before any long work.

The λ values, the unseen devices (a count or names) and the sizes of a
simulated run. The messages name the ``skedge run`` / ``skedge apply`` option
that carries each value, as these checks are what the commands run.
"""

from __future__ import annotations

import numpy as np

__all__ = ["check_counts", "check_lambda_energy", "check_names", "check_split",
           "parse_lambdas", "parse_test"]


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


def parse_lambdas(text, default, option="--lambdas"):
    """λ values of ``option`` (``default`` when None); finite and >= 0.

    ``text`` is comma-separated numbers (the command line) or a sequence of
    numbers (the library).
    """
    if text is None:
        return [float(v) for v in default]
    items = str(text).split(",") if isinstance(text, str) else [str(v) for v in text]
    try:
        values = [float(v) for v in items if v.strip()]
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
    """``--test-devices``: a count (int) or a list of device names.

    ``text`` is a number or comma-separated names (the command line), or an
    int or a sequence of names (the library).
    """
    if text is None:
        return default
    if not isinstance(text, (str, int, np.integer)):
        text = ",".join(str(t) for t in text)
    text = str(text).strip()
    if text.isdigit():
        if int(text) < 1:
            raise ValueError("--test-devices must be at least 1.")
        return int(text)
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise ValueError(f"--test-devices must be a number or device names, got {text!r}.")
    return names
