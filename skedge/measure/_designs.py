"""Which designs to measure or export: listed, sampled, the reference designs, a file."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state

from ..datasets import load_reference_designs, nb201_arch_idx, nb201_designs
from ..spaces import get_space

__all__ = ["read_designs_file", "select_designs"]


def _non_negative(**kwargs):
    ((name, v),) = kwargs.items()
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {v!r}.")
    return int(v)


def _design_ids(space, X, data_home):
    """``arch_idx`` of NB201 designs when the data home has the table, else None."""
    if space.name != "nb201":
        return None
    try:
        return nb201_arch_idx(X, data_home=data_home)
    except FileNotFoundError:
        return None


def _unique_rows(X):
    _, first = np.unique(X, axis=0, return_index=True)
    return X[np.sort(first)]


def _sample_unique(space, n, random_state, exclude=None):
    """``n`` distinct designs drawn uniformly, none of them in ``exclude``."""
    excluded = set() if exclude is None else {tuple(r) for r in np.asarray(exclude)}
    if n > space.size - len(excluded):
        raise ValueError(
            f"n={n} exceeds the {space.size - len(excluded):,} designs of {space!r} that are "
            "not already listed."
        )
    rng = check_random_state(random_state)
    X = np.empty((0, space.n_choices), dtype=np.int64)
    while len(X) < n:
        X = _unique_rows(np.vstack([X, space.sample(n - len(X), random_state=rng)]))
        X = X[[tuple(r) not in excluded for r in X]].reshape(-1, space.n_choices)
    return X[:n]


def select_designs(space, *, designs=None, n=None, include_reference=False, random_state=None,
                   data_home=None):
    """The distinct designs of a measurement or export, reference designs first.

    Parameters
    ----------
    space : DesignSpace or str
    designs : array-like of shape (n_designs, n_choices), default=None
        Designs (option indices); duplicates are kept once.
    n : int, default=None
        Otherwise ``n`` distinct designs sampled uniformly, none of them a
        reference design.
    include_reference : bool, default=False
        The space's 10 reference designs first (needs the data home).
    random_state : int, RandomState instance or None
    data_home : str or path-like, default=None

    Returns
    -------
    X : ndarray of shape (n_selected, n_choices)
    ranks : list of int or None
        Reference rank (0..9) of each design, None for the others.
    ids : list of int or None
        Benchmark id (NB201 ``arch_idx`` where the data home has it, the
        reference ids of the others), None where unknown.

    Examples
    --------
    >>> from skedge.measure import select_designs
    >>> X, ranks, ids = select_designs("nb201", designs=[[1] * 6, [1] * 6, [0] * 6])
    >>> X.tolist(), ranks
    ([[1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0]], [None, None])
    """
    space = get_space(space)
    if designs is not None and n is not None:
        raise ValueError("give either designs or n (a number of designs to sample), not both.")
    parts, ranks, ids = [], [], []
    if include_reference:
        ref, ref_ids = load_reference_designs(space, data_home=data_home, return_ids=True)
        ref = space.validate(ref, canonicalize=True)
        parts.append(ref)
        ranks += list(range(len(ref)))
        ids += [int(i) for i in ref_ids]
    if designs is not None:
        parts.append(space.validate(designs, canonicalize=True))
    elif n is not None:
        n = _non_negative(n=n)
        parts.append(_sample_unique(space, n, random_state, exclude=parts[0] if parts else None))
    if not parts or sum(len(p) for p in parts) == 0:
        raise ValueError("nothing to measure: give designs, n > 0 or include_reference=True.")
    X = np.vstack(parts)
    n_ref = len(ranks)
    ranks += [None] * (len(X) - n_ref)
    ids += [None] * (len(X) - n_ref)
    nb_ids = _design_ids(space, X, data_home)
    if nb_ids is not None:
        ids = [int(i) for i in nb_ids]
    # Keep the first occurrence of each design (a reference wins over a sampled copy).
    seen, order = set(), []
    for i, row in enumerate(X):
        if tuple(row) not in seen:
            seen.add(tuple(row))
            order.append(i)
    return X[order], [ranks[i] for i in order], [ids[i] for i in order]


def read_designs_file(path, space, *, data_home=None):
    """Designs listed in a file, as option indices.

    Accepted forms: a CSV with the space's design columns (option indices, or
    option values as in the HELP tables, e.g. ``ks0=7``), a CSV with a
    ``design_str`` or ``arch_str`` column, an NB201 CSV with only an
    ``arch_idx`` column (needs the data home), or a text file with one design
    string per line.

    Parameters
    ----------
    path : str or path-like
    space : DesignSpace or str
    data_home : str or path-like, default=None

    Returns
    -------
    X : ndarray of shape (n_designs, n_choices)

    Examples
    --------
    >>> import os, tempfile
    >>> from skedge.measure import read_designs_file
    >>> from skedge.spaces import NB201Space
    >>> path = os.path.join(tempfile.mkdtemp(), "d.txt")
    >>> _ = open(path, "w").write(NB201Space().to_string([1] * 6) + "\\n")
    >>> read_designs_file(path, "nb201").tolist()
    [[1, 1, 1, 1, 1, 1]]
    """
    space = get_space(space)
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise ValueError(f"designs file {path} is empty.")
    first = next(csv.reader([lines[0]]))
    names = set(space.choice_names)
    if names <= set(first):
        df = pd.read_csv(path)
        block = df[list(space.choice_names)]
        try:
            return space.validate(block.to_numpy(), canonicalize=True)
        except ValueError as as_index:
            try:
                return space.from_dicts(block.to_dict("records"))
            except ValueError:
                raise ValueError(
                    f"{path}: the design columns are neither option indices nor option "
                    f"values of {space!r}: {as_index}"
                ) from None
    for col in ("design_str", "arch_str"):
        if col in first:
            df = pd.read_csv(path, dtype={col: str})
            return space.from_strings(df[col].tolist())
    if first == ["arch_idx"] and space.name == "nb201":
        df = pd.read_csv(path)
        return nb201_designs(df["arch_idx"].to_numpy(), data_home=data_home)
    try:
        return space.from_strings([ln.strip() for ln in lines])
    except ValueError as exc:
        raise ValueError(
            f"cannot read designs from {path}: it has none of the columns "
            f"{space.choice_names[:3]}..., design_str, arch_str, and its lines are not "
            f"{space.name} design strings ({exc})."
        ) from None
