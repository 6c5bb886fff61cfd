"""Search engines over one cached fitness: random, exhaustive, evolution, greedy refinement.

Each engine minimizes a fitness of designs. The fitness of every engine is
built on :class:`DesignCache`, the predicted metrics of the designs scored on
one device, so a design is sent to the predictors once whatever the engine
(or the constraint, in :func:`~skedge.optimize.best_under_constraints`) that
scores it. :class:`Fitness` turns those metrics into the objective of one
``(device, λ)`` row. The estimators (:class:`~skedge.optimize.SearchBaseline`,
the ``refine`` step of :class:`~skedge.optimize.AmortizedDesignOptimizer`)
only choose an engine and its budget.
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.utils import check_random_state

__all__ = [
    "DesignCache",
    "Fitness",
    "exhaustive_search",
    "greedy_refine",
    "random_search",
    "regularized_evolution",
]

#: Candidate designs scored at once by a greedy round (memory bound, not speed).
_REFINE_BATCH = 262_144


class DesignCache:
    """Predicted metrics of every design scored on one device (batched, cached).

    Parameters
    ----------
    objective : Objective
    d : ndarray of shape (n_device_columns,)
        The device row.
    names : list of str, default=None
        Metrics kept (default: all the objective predicts).

    Examples
    --------
    >>> import numpy as np
    >>> from skedge.optimize._engines import DesignCache
    >>> class Toy:
    ...     calls = 0
    ...     def metrics(self, designs, d):
    ...         Toy.calls += 1
    ...         return {"accuracy": designs.sum(1) * 1.0}
    >>> cache = DesignCache(Toy(), None, ["accuracy"])
    >>> cache.add(np.array([[1, 2], [3, 4]]))["accuracy"].tolist()
    [3.0, 7.0]
    >>> cache.add(np.array([[3, 4]]))["accuracy"].tolist(), Toy.calls, len(cache)
    ([7.0], 1, 2)
    """

    def __init__(self, objective, d, names=None):
        if names is None:
            names = ["accuracy", "latency"] + (
                ["energy"] if getattr(objective, "energy", None) is not None else [])
        self.objective, self.d, self.names = objective, d, names
        self.rows, self.keys, self.metrics = [], {}, {k: [] for k in names}

    def __len__(self):
        return len(self.rows)

    def add(self, designs):
        """Metrics of ``designs`` (in order); only new designs are predicted, in one batch."""
        new = {}
        for row in designs:
            key = row.tobytes()
            if key not in self.keys and key not in new:
                new[key] = row
        if new:
            batch = np.array(list(new.values()))
            m = self.objective.metrics(batch, self.d)
            for key, row in new.items():
                self.keys[key] = len(self.rows)
                self.rows.append(row)
            for k in self.names:
                self.metrics[k].extend(m[k].tolist())
        idx = [self.keys[row.tobytes()] for row in designs]
        return {k: np.asarray(self.metrics[k])[idx] for k in self.names}

    def table(self):
        """Every design scored so far (in order of first scoring) and their metrics."""
        return np.array(self.rows), {k: np.asarray(v) for k, v in self.metrics.items()}


class Fitness:
    """Objective of designs for one ``(device, λ)`` row over a :class:`DesignCache`.

    One predictor call per batch: the designs not seen before are scored
    together, so a generation of evolution costs one accuracy and one latency
    prediction. The best design seen so far is kept.
    """

    def __init__(self, objective, d, lam, ref):
        self.objective, self.lam, self.ref = objective, lam, ref
        self.cache = DesignCache(objective, d)
        self.best_value, self.best_design = np.inf, None

    def __call__(self, designs):
        n_before = len(self.cache)
        values = self.objective.value_from_metrics(self.cache.add(designs), self.lam, self.ref)
        if len(self.cache) > n_before:
            new = np.array([self.cache.keys[row.tobytes()] >= n_before for row in designs])
            i = int(np.flatnonzero(new)[np.argmin(values[new])])
            if values[i] < self.best_value:
                self.best_value, self.best_design = float(values[i]), designs[i].copy()
        return values

    @property
    def n_evaluations(self):
        return len(self.cache)


def regularized_evolution(
    space, fitness, random_state=None, *, population_size=100, n_cycles=500, sample_size=25,
    n_offspring=25, n_mutations=1, crossover=False, seeds=None,
):
    """Minimize ``fitness`` over ``space`` by regularized (aging) evolution.

    Real et al. (2019): a population of ``population_size`` designs; each
    cycle, the best of ``sample_size`` random members is mutated into a child,
    the child joins and the *oldest* member dies. Here ``n_offspring`` cycles
    run as one generation, so their children are scored in one batched call
    (as if ``n_offspring`` workers ran asynchronously).

    Parameters
    ----------
    space : DesignSpace
    fitness : callable
        ``fitness(designs) -> values`` (lower is better).
    random_state : int, RandomState instance or None
    population_size, n_cycles, sample_size, n_offspring, n_mutations : int
    crossover : bool
        Breed each child from two tournament winners (uniform crossover)
        before mutating it.
    seeds : ndarray of shape (n_seeds, n_choices), optional
        Designs put in the initial population (the rest is sampled).

    Returns
    -------
    population, values : ndarray
        The final population (oldest first) and its fitness.
    """
    rng = check_random_state(random_state)
    seeds = np.empty((0, space.n_choices), np.int64) if seeds is None else seeds
    seeds = space.validate(seeds, canonicalize=True)[:population_size]
    pop = np.vstack([seeds, space.sample(population_size - len(seeds), rng)])
    values = fitness(pop)
    k_tour = min(sample_size, population_size)

    def tournament(k):
        # k tournaments of k_tour distinct members each, in one draw.
        members = rng.random_sample((k, population_size)).argsort(axis=1)[:, :k_tour]
        return pop[members[np.arange(k), values[members].argmin(axis=1)]]

    done = 0
    while done < n_cycles:
        k = min(n_offspring, n_cycles - done)
        parents = tournament(k)
        if crossover:
            parents = space.crossover(parents, tournament(k), rng)
        children = space.mutate(parents, rng, n_mutations=n_mutations)
        # Aging: the k oldest die, whatever their fitness.
        pop = np.vstack([pop[k:], children])
        values = np.concatenate([values[k:], fitness(children)])
        done += k
    return pop, values


def random_search(space, fitness, random_state=None, *, n_candidates=1000, seeds=None):
    """Score ``n_candidates`` random designs (and the ``seeds``, first) with ``fitness``.

    Returns
    -------
    designs, values : ndarray
    """
    cands = space.sample(n_candidates, check_random_state(random_state))
    if seeds is not None:
        cands = np.vstack([seeds, cands])
    return cands, fitness(cands)


def exhaustive_search(objective, designs, d, lam, chunk=256):
    """Exact minimum over ``designs`` for every λ row of one device.

    The metrics are predicted once; f is linear in λ, so each extra λ row
    costs one (n_designs,) multiply-add.

    Returns
    -------
    designs, values : ndarray
        The best design and its objective per λ row.
    seconds : float
    """
    start = time.perf_counter()
    m = objective.metrics(designs, d)
    ref = objective.references(d)[0]
    best = np.empty(len(lam), np.int64)
    vals = np.empty(len(lam))
    for s in range(0, len(lam), chunk):
        F = objective.value_from_metrics(m, lam[s:s + chunk, None, :], ref)
        F = np.broadcast_to(F, (len(lam[s:s + chunk]), len(designs)))
        best[s:s + chunk] = F.argmin(axis=1)
        vals[s:s + chunk] = F[np.arange(len(F)), best[s:s + chunk]]
    return designs[best], vals, time.perf_counter() - start


def _values(objective, designs, D, lam, refs):
    if len(designs) == 0:
        return np.zeros(0)
    return objective.value_from_metrics(objective.metrics(designs, D), lam, refs)


def greedy_refine(objective, designs, values, D, lam, refs, n_rounds):
    """Greedy best-improvement over single-choice changes, ``n_rounds`` at most.

    Every round scores every single-choice change of each row's design in one
    batch and moves the row to the best change when it improves the objective.
    ``designs`` and ``values`` are updated in place and returned.
    """
    cols, shifts = _move_table(objective.space)
    m = len(cols)
    # Rows per batch: all their moves together stay near _REFINE_BATCH candidates (the
    # moves of 100,000 OFA rows at once took more than 24 GB).
    step = max(1, _REFINE_BATCH // m)
    active = np.arange(len(designs))
    for _ in range(n_rounds):
        if len(active) == 0:
            break
        active = np.concatenate([
            _best_move(objective, designs, values, D, lam, refs, rows, cols, shifts)
            for rows in np.array_split(active, -(-len(active) // step))])
    return designs, values


def _move_table(space):
    """``(cols, shifts)``: every single-choice change, as the choice and the option shift."""
    k = space.n_options
    return (np.concatenate([np.full(kc - 1, c) for c, kc in enumerate(k)]),
            np.concatenate([np.arange(1, kc) for kc in k]))


def _apply_moves(space, designs, cols, shifts):
    """What each move makes of each design, canonical: shape ``(len(designs), len(cols), n_choices)``.

    A move of a choice the design does not use (a block beyond its stage's depth)
    gives back the design itself.
    """
    k, m = space.n_options, len(cols)
    cand = np.repeat(designs, m, axis=0).reshape(len(designs), m, -1)
    moves = np.arange(m)
    cand[:, moves, cols] = (cand[:, moves, cols] + shifts) % k[cols]
    return space.canonicalize(cand.reshape(-1, space.n_choices)).reshape(cand.shape)


def _best_move(objective, designs, values, D, lam, refs, active, cols, shifts):
    """One greedy round for the rows ``active`` (updated in place); returns the rows that moved."""
    m, mine = len(cols), designs[active]
    cand = _apply_moves(objective.space, mine, cols, shifts)
    # Moves that give back the design itself need no score of their own.
    new = np.flatnonzero((cand != mine[:, None]).any(axis=2))
    cand = cand.reshape(-1, cand.shape[2])
    owner = new // m
    v = np.full(len(active) * m, np.inf)
    v[new] = _values(objective, cand[new], D[active[owner]], lam[active[owner]],
                     refs[active[owner]])
    v = v.reshape(len(active), m)
    j = v.argmin(axis=1)
    gain = v[np.arange(len(active)), j] < values[active] - 1e-12
    better = active[gain]
    designs[better] = cand.reshape(len(active), m, -1)[gain, j[gain]]
    values[better] = v[gain, j[gain]]
    return better


def candidate_values(objective, candidates, D, lam, refs):
    """Objective of each candidate set (n_sets, n_rows) for the rows ``(D, lam, refs)``."""
    return np.stack([_values(objective, c, D, lam, refs) for c in candidates])
