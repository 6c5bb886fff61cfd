"""Accuracy/latency(/energy) trade-offs of one device: Pareto fronts and constraints.

The amortized optimizer answers one ``(device, λ)`` at a time; sweeping λ for
one device traces the *supported* part of its predicted Pareto front. Scoring
candidate designs directly (all of NB-201) gives the whole front. Both come
back as a :class:`pandas.DataFrame`; :func:`hypervolume_2d` compares fronts and
:func:`best_under_constraints` answers "most accurate design under T ms".
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.utils import Bunch, check_random_state

from ._engines import DesignCache, regularized_evolution
from ._objective import Objective
from ._rows import DEFAULT_LAMBDAS, LAMBDA_RANGE, lambda_sweep, optimizer_rows

__all__ = [
    "DEFAULT_LAMBDAS",
    "best_under_constraints",
    "hypervolume_2d",
    "non_dominated",
    "pareto_front",
    "plot_pareto_front",
]


def non_dominated(points, *, maximize=None):
    """Mask of the non-dominated rows of ``points``.

    Row ``j`` dominates row ``i`` when it is at least as good in every column
    and strictly better in one. Equal rows do not dominate each other, so
    duplicates of a front point are all kept.

    Neither numpy, scipy nor scikit-learn offers this filter, so it is
    hand-written: the *simple cull*. The lexicographically best remaining row
    cannot be dominated by any remaining row (a dominating row would sort
    before it), so it is on the front; every row it dominates is dropped; repeat.
    That costs O(n·m) comparisons for a front of m rows, vectorized over n.

    Parameters
    ----------
    points : array-like of shape (n_points, n_objectives)
        Finite values.
    maximize : array-like of bool of shape (n_objectives,), default=None
        Columns to maximize; the others are minimized (all, by default).

    Returns
    -------
    mask : ndarray of bool, shape (n_points,)

    Examples
    --------
    >>> from skedge.optimize import non_dominated
    >>> pts = [[70, 1.0], [80, 3.0], [75, 3.5], [80, 3.0]]   # accuracy, latency
    >>> non_dominated(pts, maximize=[True, False]).tolist()
    [True, True, False, True]
    """
    P = np.asarray(points, dtype=np.float64)
    if P.ndim != 2:
        raise ValueError(f"points must be a 2-D array (n_points, n_objectives), got {P.shape}.")
    if not np.isfinite(P).all():
        raise ValueError("points hold NaN or infinite values.")
    if maximize is not None:
        maximize = np.asarray(maximize, dtype=bool)
        if maximize.shape != (P.shape[1],):
            raise ValueError(
                f"maximize must have one flag per column ({P.shape[1]}), got {maximize.shape}."
            )
        P = np.where(maximize, -P, P)
    order = np.lexsort(P.T[::-1])
    remaining = order
    keep = np.zeros(len(P), dtype=bool)
    while remaining.size:
        i = remaining[0]
        keep[i] = True
        rest = P[remaining[1:]]
        dominated = (rest >= P[i]).all(axis=1) & (rest > P[i]).any(axis=1)
        remaining = remaining[1:][~dominated]
    return keep


# ------------------------------------------------------------------ helpers
def _objective_of(model, objective):
    if isinstance(model, Objective):
        return model
    if objective is not None:
        return objective
    obj = getattr(model, "objective_", None)
    if isinstance(obj, Objective):
        return obj
    raise ValueError(
        f"cannot find the objective of {type(model).__name__}: pass an Objective, a fitted "
        "estimator with an `objective_` attribute, or objective=."
    )


def _device_row(objective, device):
    d = np.asarray(device, dtype=np.float64)
    if d.ndim == 2 and len(d) == 1:
        d = d[0]
    if d.ndim != 1 or len(d) != objective.n_device_columns:
        raise ValueError(
            f"device must be one row of {objective.n_device_columns} device columns, "
            f"got shape {np.shape(device)}."
        )
    # Objective.split validates device columns (NaN imputable? infinite?).
    objective.split(optimizer_rows(d, np.zeros((1, objective.n_lambdas))))
    return d


def _lambda_grid(model, objective, lambdas):
    """The λ rows of a sweep: ``lambdas``, or the default sweep of the model's λ range."""
    if lambdas is None:
        sweep = lambda_sweep(objective.n_lambdas,
                             lambda_range=getattr(model, "lambda_range", LAMBDA_RANGE))
        return sweep[:, None] if sweep.ndim == 1 else sweep
    lam = np.asarray(lambdas, dtype=np.float64)
    if lam.ndim == 1:
        if objective.n_lambdas != 1:
            raise ValueError(
                "the objective has latency and energy weights: give lambdas as rows "
                "(λ_lat, λ_en) of shape (n, 2)."
            )
        lam = lam[:, None]
    if lam.ndim != 2 or lam.shape[1] != objective.n_lambdas or len(lam) == 0:
        raise ValueError(
            f"lambdas must have shape (n, {objective.n_lambdas}), got {np.shape(lambdas)}."
        )
    return lam


def _metric_names(objective):
    return ["accuracy", "latency"] + (["energy"] if objective.energy is not None else [])


def _candidate_designs(objective, designs):
    space = objective.space
    if isinstance(designs, str):
        if designs != "all":
            raise ValueError(f"designs must be an array of designs or 'all', got {designs!r}.")
        return space.enumerate()
    return np.unique(space.validate(designs, canonicalize=True), axis=0)


def _sweep(model, objective, d, lam):
    """Designs the model picks along a λ sweep (rows sorted by λ)."""
    if not hasattr(model, "predict"):
        raise ValueError(
            "a λ sweep needs an optimizer with predict(X); pass designs= (or designs='all' "
            "for an enumerable space) to score candidates instead."
        )
    lam = lam[np.lexsort(lam.T[::-1])]
    X = optimizer_rows(d, lam)
    return objective.space.validate(model.predict(X), canonicalize=True), lam


# ------------------------------------------------------------------- fronts
def pareto_front(model, device, *, designs=None, lambdas=None, objective=None):
    """The predicted Pareto front of one device.

    Two ways to get the candidates:

    * **λ sweep** (``designs=None`` and ``model`` has ``predict``): the model
      (an amortized optimizer, a :class:`~skedge.optimize.SearchBaseline`, ...)
      picks one design per λ in ``lambdas``. Only designs minimizing some
      weighted sum are reachable, so this traces the convex part of the front.
    * **candidates** (``designs`` given, or ``model`` is an
      :class:`~skedge.optimize.Objective` of an enumerable space): the given
      designs (``"all"``: the whole space) are scored; this is the exact front
      among them.

    The distinct designs are then filtered to the non-dominated ones:
    accuracy maximized, latency (and energy) minimized.

    Parameters
    ----------
    model : Objective or fitted estimator
        An estimator mapping optimizer rows to designs, whose objective is
        its ``objective_`` attribute (or pass ``objective=``).
    device : array-like of shape (n_device_columns,)
        One device row (the device columns of an optimizer row).
    designs : array-like of shape (n, n_choices) or "all", default=None
        Candidate designs to score instead of a λ sweep.
    lambdas : array-like, default=None
        λ sweep: λ_lat values (1-D), or rows ``(λ_lat, λ_en)`` with energy.
        Default: :func:`~skedge.optimize.lambda_sweep` over the model's
        ``lambda_range`` (:data:`~skedge.optimize.LAMBDA_RANGE` when it has
        none): 0 and 25 log-spaced values (with energy, the grid of 0 and 9
        log-spaced values for each weight), never beyond what an amortized
        optimizer was trained on.
    objective : Objective, default=None
        The objective, when ``model`` does not expose ``objective_``.

    Returns
    -------
    front : pandas.DataFrame
        One row per non-dominated design, sorted by latency: ``design``
        (string form), ``accuracy``, ``latency`` (, ``energy``), and
        ``lambda_latency`` (, ``lambda_energy``): the smallest swept λ that
        produced the design (NaN for candidates).

    Examples
    --------
    >>> import numpy as np
    >>> from skedge.spaces import NB201Space
    >>> from skedge.pipelines import make_accuracy_pipeline, make_performance_pipeline
    >>> from skedge.optimize import Objective, pareto_front
    >>> s = NB201Space(); X = s.sample(200, 0); D = np.ones((200, 12))
    >>> acc = make_accuracy_pipeline(s, hidden_layer_sizes=(8,), max_epochs=2,
    ...                              random_state=0).fit(X, 80 + (X == 3).sum(1))
    >>> lat = make_performance_pipeline(s, hidden_layer_sizes=(8,), max_epochs=2,
    ...     random_state=0).fit(np.hstack([X, D]), np.exp((X == 3).sum(1) * 0.2))
    >>> front = pareto_front(Objective(s, acc, lat), D[0], designs="all")
    >>> list(front.columns)
    ['design', 'accuracy', 'latency', 'lambda_latency']
    >>> bool(front["latency"].is_monotonic_increasing)
    True
    """
    obj = _objective_of(model, objective)
    d = _device_row(obj, device)
    names = _metric_names(obj)
    lam_names = obj.lambda_names
    if designs is None and isinstance(model, Objective):
        designs = "all"
    if designs is not None:
        cands = _candidate_designs(obj, designs)
        lam_of = np.full((len(cands), obj.n_lambdas), np.nan)
    else:
        picked, lam = _sweep(model, obj, d, _lambda_grid(model, obj, lambdas))
        # First occurrence in λ order: the smallest λ producing each design.
        cands, first = np.unique(picked, axis=0, return_index=True)
        lam_of = lam[first]
    m = obj.metrics(cands, d)
    pts = np.column_stack([m[k] for k in names])
    keep = non_dominated(pts, maximize=[True] + [False] * (len(names) - 1))
    front = pd.DataFrame({"design": obj.space.to_strings(cands[keep])})
    for k in names:
        front[k] = m[k][keep]
    for j, k in enumerate(lam_names):
        front[k] = lam_of[keep, j]
    front = front.sort_values(["latency", "accuracy"], ascending=[True, False], kind="stable")
    return front.reset_index(drop=True)


def best_under_constraints(
    model, device, *, max_latency=None, max_energy=None, designs=None, lambdas=None,
    objective=None, max_exhaustive=100_000, population_size=100, n_cycles=2000,
    random_state=None,
):
    """The most accurate design (predicted) within latency/energy budgets on one device.

    Candidates, in order of preference:

    1. ``designs`` when given;
    2. every design, when the space has at most ``max_exhaustive`` designs
       (the answer is then exact for the predictors);
    3. otherwise the designs of a λ sweep of ``model`` (when it has
       ``predict``) plus a regularized evolution of accuracy with a penalty
       on budget overruns (seeded with the sweep's designs): a heuristic.

    Parameters
    ----------
    model : Objective or fitted estimator
        As in :func:`pareto_front`.
    device : array-like of shape (n_device_columns,)
    max_latency, max_energy : float, default=None
        Budgets (in the predictors' units); at least one is required.
    designs : array-like of shape (n, n_choices) or "all", default=None
    lambdas : array-like, default=None
        λ sweep for case 3 (see :func:`pareto_front`).
    objective : Objective, default=None
    max_exhaustive : int, default=100_000
    population_size, n_cycles : int
        Evolution of case 3.
    random_state : int, RandomState instance or None, default=None
        Seeds the evolution of case 3.

    Returns
    -------
    best : Bunch
        ``design`` (1-D int array), ``design_string``, ``accuracy``,
        ``latency`` (, ``energy``), ``n_candidates`` and ``exact`` (True when
        every design of the space was considered).

    Raises
    ------
    ValueError
        If no candidate meets the budgets; the message gives the smallest
        latency (energy) found.

    Examples
    --------
    >>> import numpy as np
    >>> from skedge.spaces import NB201Space
    >>> from skedge.pipelines import make_accuracy_pipeline, make_performance_pipeline
    >>> from skedge.optimize import Objective, best_under_constraints
    >>> s = NB201Space(); X = s.sample(200, 0); D = np.ones((200, 12))
    >>> acc = make_accuracy_pipeline(s, hidden_layer_sizes=(8,), max_epochs=2,
    ...                              random_state=0).fit(X, 80 + (X == 3).sum(1))
    >>> lat = make_performance_pipeline(s, hidden_layer_sizes=(8,), max_epochs=2,
    ...     random_state=0).fit(np.hstack([X, D]), np.exp((X == 3).sum(1) * 0.2))
    >>> obj = Objective(s, acc, lat)
    >>> budget = float(np.median(obj.metrics(s.sample(50, 0), D[0])["latency"]))
    >>> best = best_under_constraints(obj, D[0], max_latency=budget)
    >>> bool(best.latency <= budget), best.exact
    (True, True)
    """
    obj = _objective_of(model, objective)
    d = _device_row(obj, device)
    if max_latency is None and max_energy is None:
        raise ValueError("give max_latency and/or max_energy.")
    if max_energy is not None and obj.energy is None:
        raise ValueError("max_energy needs an objective with an energy predictor.")
    for name, v in (("max_latency", max_latency), ("max_energy", max_energy)):
        if v is not None and not (np.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a positive finite number, got {v!r}.")
    names = _metric_names(obj)
    space = obj.space
    cache = DesignCache(obj, d, names)
    exact = False
    if designs is not None:
        cache.add(_candidate_designs(obj, designs))
        exact = isinstance(designs, str)
    elif space.size <= min(max_exhaustive, space.max_enumerate):
        cache.add(space.enumerate())
        exact = True
    else:
        seeds = None
        if hasattr(model, "predict"):
            seeds, _ = _sweep(model, obj, d, _lambda_grid(model, obj, lambdas))
            seeds = np.unique(seeds, axis=0)
            cache.add(seeds)

        def penalized(X):
            m = cache.add(X)
            # Overruns cost far more than any accuracy gain (accuracy/100 <= 1).
            over = np.zeros(len(X))
            if max_latency is not None:
                over += np.maximum(m["latency"] / max_latency - 1.0, 0.0)
            if max_energy is not None:
                over += np.maximum(m["energy"] / max_energy - 1.0, 0.0)
            return -m["accuracy"] / 100.0 + 10.0 * (over > 0) + 10.0 * over

        regularized_evolution(
            space, penalized, check_random_state(random_state), seeds=seeds,
            population_size=population_size, n_cycles=n_cycles,
            sample_size=max(2, population_size // 4), n_offspring=max(1, population_size // 4),
        )
    cands, m = cache.table()
    ok = np.ones(len(cands), dtype=bool)
    if max_latency is not None:
        ok &= m["latency"] <= max_latency
    if max_energy is not None:
        ok &= m["energy"] <= max_energy
    if not ok.any():
        found = [f"the smallest predicted latency found is {m['latency'].min():.4g}"]
        if max_energy is not None:
            found.append(f"the smallest predicted energy {m['energy'].min():.4g}")
        budgets = ", ".join(f"{k}={v:.4g}" for k, v in
                            (("max_latency", max_latency), ("max_energy", max_energy))
                            if v is not None)
        raise ValueError(
            f"no candidate design meets {budgets} on this device ({len(cands)} designs "
            f"scored); {' and '.join(found)}."
        )
    i = np.flatnonzero(ok)[np.argmax(m["accuracy"][ok])]
    out = Bunch(design=cands[i].copy(), design_string=space.to_string(cands[i]))
    for k in names:
        out[k] = float(m[k][i])
    out.n_candidates = len(cands)
    out.exact = exact
    return out


# --------------------------------------------------------------- hypervolume
def hypervolume_2d(points, ref):
    """Area dominated by an (accuracy, latency) front, bounded by a reference point.

    The area of the set of ``(a, l)`` with ``ref_acc <= a <= a_i`` and
    ``l_i <= l <= ref_lat`` for some point ``i``: larger is better.

    **Reference point convention.** ``ref = (accuracy floor, latency ceiling)``
    must be worse than the points that should count (points not strictly
    better than ``ref`` in both coordinates add nothing). Compare fronts of a
    device only under the *same* ``ref``; skedge reports hypervolume *ratios*
    (a front over the exact front) with ``ref`` = (lowest predicted accuracy,
    highest predicted latency) over the device's candidate designs (e.g. all of
    NB-201), so every candidate counts. The ratio does not depend on the
    latency unit, hence needs no per-device normalization.

    Parameters
    ----------
    points : array-like of shape (n, 2) or DataFrame
        ``(accuracy, latency)`` rows, or a frame with those columns (e.g. from
        :func:`pareto_front`). Dominated points may be included.
    ref : tuple of 2 floats
        ``(accuracy floor, latency ceiling)``.

    Returns
    -------
    hv : float

    Examples
    --------
    >>> from skedge.optimize import hypervolume_2d
    >>> hypervolume_2d([[70, 1.0], [80, 3.0]], ref=(60, 5.0))  # 10*2 + 20*2
    60.0
    """
    if isinstance(points, pd.DataFrame):
        points = points[["accuracy", "latency"]].to_numpy()
    P = np.asarray(points, dtype=np.float64)
    if P.size == 0:
        P = P.reshape(0, 2)
    if P.ndim != 2 or P.shape[1] != 2:
        raise ValueError(f"points must have shape (n, 2) (accuracy, latency), got {P.shape}.")
    ref = np.asarray(ref, dtype=np.float64)
    if ref.shape != (2,) or not np.isfinite(ref).all():
        raise ValueError(f"ref must be a finite (accuracy, latency) pair, got {ref!r}.")
    P = P[(P[:, 0] > ref[0]) & (P[:, 1] < ref[1])]
    if len(P) == 0:
        return 0.0
    P = P[non_dominated(P, maximize=[True, False])]
    P = P[np.argsort(P[:, 1], kind="stable")]
    # Along a front sorted by latency, accuracy rises; between consecutive
    # latencies the best accuracy reachable is that of the faster point.
    widths = np.diff(np.r_[P[:, 1], ref[1]])
    return float(np.sum((P[:, 0] - ref[0]) * widths))


# ---------------------------------------------------------------------- plot
def plot_pareto_front(front, ax=None, *, label=None, annotate=False, step=True, **kwargs):
    """Plot an (accuracy vs latency) front from :func:`pareto_front`.

    Parameters
    ----------
    front : DataFrame
        With ``accuracy`` and ``latency`` columns (and ``design`` to annotate).
    ax : matplotlib Axes, default=None
        Axes to draw on (a new figure's when None).
    label : str, default=None
        Legend label.
    annotate : bool, default=False
        Write each design string next to its point.
    step : bool, default=True
        Join the points with the front's staircase.
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.scatter`.

    Returns
    -------
    ax : matplotlib Axes
    """
    import matplotlib.pyplot as plt  # optional: the [plot] extra, only needed to plot

    if ax is None:
        _, ax = plt.subplots()
    f = front.sort_values("latency")
    points = ax.scatter(f["latency"], f["accuracy"], label=label, zorder=3, **kwargs)
    if step and len(f) > 1:
        ax.step(f["latency"], f["accuracy"], where="post", color=points.get_facecolor()[0],
                alpha=0.6)
    if annotate:
        for _, row in f.iterrows():
            ax.annotate(str(row["design"]), (row["latency"], row["accuracy"]), fontsize=6)
    ax.set_xlabel("predicted latency")
    ax.set_ylabel("predicted accuracy (%)")
    if label is not None:
        ax.legend()
    return ax
