"""Checks of what users hand to skedge, shared by the estimators and the command line.

* :class:`OutOfRangeWarning` - a legal value far outside what a model was fitted on;
* :func:`warn_far_outside` - issue it for the first such value of a table;
* :func:`check_positive_target` - latency / energy targets before a log fit;
* :class:`CommandFailed` - a failure (not a usage error) the CLI reports with exit code 1;
* :func:`check_writable` - an output path checked *before* long work starts;
* :func:`load_model_file` - a model file (joblib, or another loader such as
  :func:`skedge.persistence.load_model`), with a clean message when it is
  truncated, garbage, or not the kind of model expected;
* :func:`warn_if_accuracy_fraction` - accuracies given as fractions instead of percent;
* :func:`numeric_column` - a table column as numbers, refusing text that is no number.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

__all__ = [
    "CommandFailed",
    "OutOfRangeWarning",
    "check_positive_target",
    "check_writable",
    "load_model_file",
    "numeric_column",
    "warn_far_outside",
    "warn_if_accuracy_fraction",
]


class OutOfRangeWarning(UserWarning):
    """A value is legal but far outside the range a model was fitted on: an extrapolation."""


class CommandFailed(RuntimeError):
    """A command could not do its work (unreadable model, unwritable output): exit code 1."""


def warn_far_outside(values, low, high, margin, names, *, what, scale=None, stacklevel=3):
    """Warn (:class:`OutOfRangeWarning`) about the first value far outside its column's range.

    Parameters
    ----------
    values : ndarray of shape (n_samples, n_features)
        Raw values (NaN: unknown, never flagged).
    low, high : ndarray of shape (n_features,)
        The fitted range of each column (NaN: no range known, never flagged).
    margin : float or ndarray of shape (n_features,)
        How far beyond the range (on the ``scale``) a value may lie unflagged.
    names : sequence of str
        Column names for the message.
    what : str
        What the values are, for the message (e.g. "device feature").
    scale : callable, default=None
        Elementwise map the range and margin are measured on (e.g. a log).
    stacklevel : int, default=3

    Returns
    -------
    flagged : bool
        Whether a warning was issued.
    """
    values = np.asarray(values, dtype=np.float64)
    f = scale if scale is not None else (lambda v: v)
    with np.errstate(invalid="ignore", over="ignore"):
        v, lo, hi = f(values), f(np.asarray(low, float)), f(np.asarray(high, float))
        far = (v < lo - margin) | (v > hi + margin)
    far &= ~np.isnan(values) & ~np.isnan(lo) & ~np.isnan(hi)
    if not far.any():
        return False
    row, col = map(int, np.argwhere(far)[0])
    warnings.warn(
        f"{what} {names[col]} = {values[row, col]:g} lies far outside the range the model was "
        f"fitted on [{low[col]:g}, {high[col]:g}]: the prediction is an extrapolation. "
        "Check the value and its unit.",
        OutOfRangeWarning, stacklevel=stacklevel,
    )
    return True


def check_positive_target(y, *, max_fraction=0.05):
    """Floor a few non-positive values of a mostly positive target, with a warning.

    A log-scale fit (latency, energy) needs positive targets. One 0 ms reading
    among thousands must not switch the log scale off for the whole model, nor
    pass unnoticed: it is floored at the smallest positive target and reported.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
    max_fraction : float, default=0.05
        Largest share of non-positive values that is floored; beyond it the
        target is taken as a signed quantity and returned as it is.

    Returns
    -------
    y : ndarray
        ``y``, or a floored copy.
    floored : bool
        Whether values were floored (the log scale is then safe).

    Raises
    ------
    ValueError
        Every target is zero.
    """
    y = np.asarray(y, dtype=np.float64)
    if len(y) and not np.any(y):
        raise ValueError(
            f"every target value is 0 ({len(y)} rows): there is nothing to learn. Check that "
            "the measurements were read from the right column and unit."
        )
    bad = y <= 0
    if not bad.any() or bad.all() or bad.mean() > max_fraction:
        return y, False
    floor = float(y[~bad].min())
    warnings.warn(
        f"{int(bad.sum())} of {len(y)} target values are <= 0 (minimum {y.min():g}); a latency "
        f"or energy cannot be. They were floored at the smallest positive value ({floor:g}) "
        "so the log-scale target stays on; drop or re-measure those rows, or pass "
        "target_transform='none' for a signed target.",
        UserWarning, stacklevel=4,
    )
    return np.where(bad, floor, y), True


def check_writable(path, option, *, directory=False):
    """Check that ``path`` can be written, before any long work; leaves no trace.

    Parameters
    ----------
    path : str or path-like
    option : str
        The command-line option that named it, for the message.
    directory : bool, default=False
        ``path`` is a folder to write into (else a file to write).

    Raises
    ------
    ValueError
        ``path`` is a directory where a file is expected or the reverse, or
        nothing can be created there (permissions, read-only file system).
    """
    path = Path(path)
    if directory and path.exists() and not path.is_dir():
        raise ValueError(f"{option} {path} exists and is not a directory.")
    if not directory and path.is_dir():
        raise ValueError(f"{option} {path} is a directory; give a file name (e.g. "
                         f"{path / 'out.csv'}).")
    target = path if directory else path.parent
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{option} {path}: {existing} is not a directory.")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise ValueError(
            f"{option} {path} cannot be written: {exc.strerror or exc} ({existing}). Choose "
            "another place."
        ) from None


def load_model_file(path, *, check, expected, load=joblib.load, kind="a joblib file"):
    """Load a model file and check what it holds.

    Parameters
    ----------
    path : path-like
    check : callable
        ``check(obj) -> bool``: whether the object is the expected model.
    expected : str
        What the file should hold, for the message.
    load : callable, default=joblib.load
        ``load(path) -> obj``, e.g. :func:`skedge.persistence.load_model` for
        the safe format (a folder).
    kind : str, default="a joblib file"
        What ``load`` reads, for the message.

    Raises
    ------
    CommandFailed
        The file is truncated, not ``kind``, or holds something else.
    """
    path = Path(path)
    try:
        obj = load(path)
    except Exception as exc:  # noqa: BLE001 - any loading failure means a damaged file
        raise CommandFailed(
            f"{path} could not be loaded ({type(exc).__name__}{': ' if str(exc) else ''}"
            f"{str(exc)[:120]}): it is "
            f"truncated, damaged or not {kind}. Rerun `skedge run` to rewrite it."
        ) from None
    if not check(obj):
        raise CommandFailed(
            f"{path} holds a {type(obj).__name__}, not {expected}. Rerun `skedge run` to "
            "rewrite it."
        )
    return obj


def warn_if_accuracy_fraction(accuracy, *, stacklevel=3):
    """Warn when predicted accuracies look like fractions (0-1) instead of percent.

    The objective is ``-Acc/100 + λ·Lat/Lat_ref``: accuracies in [0, 1] weigh
    a hundred times too little against latency, and the search silently
    picks fast, inaccurate designs.

    Parameters
    ----------
    accuracy : array-like
        Predicted accuracies of a sample of designs.

    Returns
    -------
    flagged : bool
    """
    acc = np.asarray(accuracy, dtype=np.float64)
    acc = acc[np.isfinite(acc)]
    if len(acc) == 0 or np.max(np.abs(acc)) > 1.5:
        return False
    warnings.warn(
        f"the accuracy predictor returns values in [{acc.min():.3g}, {acc.max():.3g}]: "
        "accuracies look like fractions, but the objective expects percent (0-100). Fit "
        "the accuracy predictor on 100 * accuracy, or λ weighs latency 100x too much.",
        UserWarning, stacklevel=stacklevel,
    )
    return True


_MISSING_WORDS = ("", "nan", "na", "n/a", "null", "none")


def _is_missing(value):
    """None, NaN, pandas' NA, a blank string or a word like "n/a": an unknown feature."""
    if value is None or (isinstance(value, str) and value.strip().lower() in _MISSING_WORDS):
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def numeric_column(column, field, source):
    """Float values of one table column; a value that is no number is an error, not NaN.

    Parameters
    ----------
    column : pandas.Series
        Raw values (numbers, numeric strings, None / NaN / blank or a word
        such as "n/a" for unknown), indexed by row name.
    field : str
        Column name, for the message.
    source : str
        Where the table came from, for the message.

    Returns
    -------
    values : pandas.Series of float64
        NaN where unknown.

    Raises
    ------
    ValueError
        A value is not a number ("2,8", "300 GFLOPS", a bool) or is infinite;
        the message names the row, field and value.
    """
    values = column.to_numpy(dtype=object)
    missing = np.array([_is_missing(v) for v in values], dtype=bool)
    parsed = pd.to_numeric(pd.Series(np.where(missing, None, values), dtype=object),
                           errors="coerce").to_numpy(np.float64)
    is_bool = np.array([isinstance(v, (bool, np.bool_)) for v in values], dtype=bool)
    if np.isinf(parsed).any():
        i = int(np.flatnonzero(np.isinf(parsed))[0])
        raise ValueError(f"{source}: device {column.index[i]!r} has an infinite {field} "
                         f"({values[i]!r}); give a finite number, or leave it empty when unknown.")
    bad = (~missing & np.isnan(parsed)) | is_bool
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{source}: device {column.index[i]!r} has {field} = {values[i]!r}, which is not a "
            f"number. Give a plain number in the units of the field (e.g. 2.8, not '2,8' or "
            f"'2.8 GHz'), or leave it empty / null when unknown."
        )
    return pd.Series(parsed, index=column.index, dtype=np.float64)
