"""Per-device search: the fallback (and the yardstick) of the amortized optimizer.

:class:`SearchBaseline` minimizes the same predicted objective as the optimizer
(:class:`~skedge.optimize.Objective`), but solves every ``(device, λ)`` row on
its own by querying the predictors: exhaustively over an enumerable space, by
random sampling, or by regularized (aging) evolution. It needs no training, so
it is what one runs for a device the optimizer is unsure about, and what the
optimizer's designs are compared against (objective gap, wall time per row).

Rows are independent, so ``n_jobs`` spreads them over joblib workers; under
``joblib.parallel_config(backend="dask")`` they spread over a dask cluster.
"""

from __future__ import annotations

import time
from numbers import Integral

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, Options, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._checks import warn_if_accuracy_fraction
from ..spaces import DesignSpace, get_space
from ._engines import Fitness, exhaustive_search, random_search, regularized_evolution
from ._fitted import build_objective
from ._rows import OptimizerMixin

__all__ = ["SearchBaseline"]

_MAX_SEED = np.iinfo(np.int32).max


def _search_row(objective, method, params, d, lam, warm, seed):
    """Search one ``(device, λ)`` row; returns (design, value, n_evaluations, seconds)."""
    start = time.perf_counter()
    space = objective.space
    rng = np.random.RandomState(seed)
    fitness = Fitness(objective, d, lam, objective.references(d)[0])
    if method == "random":
        random_search(space, fitness, rng, n_candidates=params["n_candidates"],
                      seeds=None if warm is None else warm[None])
    else:
        seeds = None
        if warm is not None:
            # The warm design and a few of its mutants: a head start that the
            # tournament exploits, while most of the population stays diverse.
            n_mut = min(params["population_size"] // 4, params["population_size"] - 1)
            seeds = np.vstack([warm[None], space.mutate(np.repeat(warm[None], n_mut, 0), rng)])
        regularized_evolution(
            space, fitness, rng, seeds=seeds,
            **{k: params[k] for k in ("population_size", "n_cycles", "sample_size",
                                      "n_offspring", "n_mutations", "crossover")},
        )
    return fitness.best_design, fitness.best_value, fitness.n_evaluations, \
        time.perf_counter() - start


# -------------------------------------------------------------------- estimator
class SearchBaseline(OptimizerMixin, BaseEstimator):
    """Per-row design search on the predicted objective (no training).

    For each optimizer row ``[device columns..., λ_lat(, λ_en)]`` it returns
    the design minimizing
    ``f = -Acc/100 + λ_lat·Lat/Lat_ref(d) (+ λ_en·En/En_ref(d))`` as predicted
    by the given fitted predictors (see :class:`~skedge.optimize.Objective`),
    found by exhaustive enumeration, random sampling or regularized evolution.

    Parameters
    ----------
    space : DesignSpace or str
    accuracy : fitted estimator
        Accuracy predictor (e.g. :func:`~skedge.make_accuracy_pipeline`).
    latency : fitted estimator
        Latency predictor on pair rows (e.g. :func:`~skedge.make_performance_pipeline`).
    energy : fitted estimator, default=None
        Energy predictor; adds the ``λ_en`` column to the rows.
    method : {"auto", "evolution", "random", "exhaustive"}, default="auto"
        ``"exhaustive"`` scores every design of the space (exact; the metrics
        are predicted once per distinct device and reused by all its λ rows).
        ``"auto"`` is exhaustive when ``space.size <= max_exhaustive``, else
        evolution.
    population_size : int, default=100
        Evolution: population (aging: the oldest member dies each cycle).
    n_cycles : int, default=500
        Evolution: children bred (each from a tournament winner).
    sample_size : int, default=25
        Evolution: tournament size.
    n_offspring : int, default=25
        Evolution: cycles run as one generation, whose children are scored in
        a single predictor call (the batch size of the search).
    n_mutations : int, default=1
        Evolution: choices changed per child.
    crossover : bool, default=False
        Evolution: breed each child from two tournament winners first.
    n_candidates : int, default=1000
        Random search: designs sampled per row.
    max_exhaustive : int, default=100_000
        Largest space ``"auto"`` enumerates.
    warm_start : array-like of shape (n_rows, n_choices) or (n_choices,), \
estimator with ``predict``, None or False, default=None
        Designs seeding each row's search: a fixed array (one design per row
        of ``X`` at predict time, or one for all) or a fitted optimizer whose
        ``predict(X)`` gives them. Evolution puts the design and
        ``population_size // 4`` of its mutants in the initial population;
        random search adds it to the candidates; exhaustive ignores it.
        None or False: no warm start.
    n_jobs : int, default=None
        Rows searched in parallel with joblib (``None``: 1 unless in a
        :func:`joblib.parallel_config` context, e.g. ``backend="dask"``).
        Results do not depend on it: each row has its own seed.
    random_state : int, RandomState instance or None, default=None
        Seeds the per-row searches (one seed drawn per row at predict time).
    verbose : int, default=0
        1 prints progress every ~10% of rows, 2 every row.

    Attributes
    ----------
    objective_ : Objective
        The predicted objective (built from the predictors in :meth:`fit`).
    space_ : DesignSpace
    method_ : str
        The method used (``"auto"`` resolved).
    n_features_in_ : int
        Width of an optimizer row.
    n_evaluations_ : ndarray of int
        Per row of the last :meth:`search` call (:meth:`predict` and
        :meth:`score` leave the estimator unchanged): designs
        scored (all designs for exhaustive search, whose predictions are
        shared by the rows of a device).
    search_time_ : ndarray of float
        Per row of the last :meth:`search` call: wall seconds of its search (exhaustive: the
        device's time split evenly over its rows).

    See Also
    --------
    skedge.optimize.Objective : the objective minimized.
    skedge.optimize.pareto_front : sweep λ with this (or any) optimizer.

    Notes
    -----
    :func:`sklearn.base.clone` clones the predictor parameters too, which
    unfits them; wrap fitted predictors in :class:`sklearn.frozen.FrozenEstimator`
    to use this estimator in a grid search.

    Examples
    --------
    >>> import numpy as np
    >>> from skedge.spaces import NB201Space
    >>> from skedge.pipelines import make_accuracy_pipeline, make_performance_pipeline
    >>> from skedge.optimize import SearchBaseline
    >>> s = NB201Space(); X = s.sample(200, 0); rng = np.random.RandomState(0)
    >>> D = rng.rand(200, 12) + 1; D[:, 0] = 0
    >>> acc = make_accuracy_pipeline(s, hidden_layer_sizes=(8,), max_epochs=2,
    ...                              random_state=0).fit(X, 80 + (X == 3).sum(1))
    >>> lat = make_performance_pipeline(s, hidden_layer_sizes=(8,), max_epochs=2,
    ...     random_state=0).fit(np.hstack([X, D]), np.exp((X == 3).sum(1) * 0.2))
    >>> rows = np.hstack([D[:2], [[0.0], [1.0]]])        # device columns, λ_lat
    >>> search = SearchBaseline(space=s, accuracy=acc, latency=lat,
    ...                         method="exhaustive").fit(rows)
    >>> search.predict(rows).shape
    (2, 6)
    """

    _parameter_constraints = {
        "space": [DesignSpace, str],
        "accuracy": [HasMethods(["predict"])],
        "latency": [HasMethods(["predict"])],
        "energy": [HasMethods(["predict"]), None],
        "method": [StrOptions({"auto", "evolution", "random", "exhaustive"})],
        "population_size": [Interval(Integral, 2, None, closed="left")],
        "n_cycles": [Interval(Integral, 0, None, closed="left")],
        "sample_size": [Interval(Integral, 1, None, closed="left")],
        "n_offspring": [Interval(Integral, 1, None, closed="left")],
        "n_mutations": [Interval(Integral, 1, None, closed="left")],
        "crossover": ["boolean"],
        "n_candidates": [Interval(Integral, 1, None, closed="left")],
        "max_exhaustive": [Interval(Integral, 1, None, closed="left")],
        # False reads as None: scikit-learn's convention for a boolean warm_start
        # (its checks set warm_start=False on any estimator with the parameter).
        "warm_start": ["array-like", HasMethods(["predict"]), None, Options(bool, {False})],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        space,
        accuracy,
        latency,
        energy=None,
        method="auto",
        population_size=100,
        n_cycles=500,
        sample_size=25,
        n_offspring=25,
        n_mutations=1,
        crossover=False,
        n_candidates=1000,
        max_exhaustive=100_000,
        warm_start=None,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.space = space
        self.accuracy = accuracy
        self.latency = latency
        self.energy = energy
        self.method = method
        self.population_size = population_size
        self.n_cycles = n_cycles
        self.sample_size = sample_size
        self.n_offspring = n_offspring
        self.n_mutations = n_mutations
        self.crossover = crossover
        self.n_candidates = n_candidates
        self.max_exhaustive = max_exhaustive
        self.warm_start = warm_start
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # ----------------------------------------------------------------- fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Validate the predictors and the rows; search needs no training.

        Parameters
        ----------
        X : array-like of shape (n_rows, n_device_columns + n_lambdas)
            Optimizer rows (only validated; any representative rows will do).
        y : None
            Ignored.

        Returns
        -------
        self : object
        """
        space = get_space(self.space)
        if self.sample_size > self.population_size:
            raise ValueError(
                f"sample_size={self.sample_size} exceeds population_size="
                f"{self.population_size}: a tournament draws distinct members."
            )
        if self.n_offspring > self.population_size:
            raise ValueError(
                f"n_offspring={self.n_offspring} exceeds population_size="
                f"{self.population_size}: a generation cannot outlive the population."
            )
        objective = build_objective(space, self.accuracy, self.latency, self.energy)
        D, _ = objective.split(X)
        if len(D) == 0:
            raise ValueError("X holds no rows.")
        try:
            sample = objective.metrics(space.sample(16, random_state=0), D[0])
        except ValueError as exc:
            raise ValueError(f"the predictors cannot score designs on X's devices: {exc}") from None
        warn_if_accuracy_fraction(sample["accuracy"], stacklevel=4)
        method = self.method
        if method == "auto":
            method = "exhaustive" if space.size <= self.max_exhaustive else "evolution"
        if method == "exhaustive" and space.size > space.max_enumerate:
            raise ValueError(
                f"method='exhaustive' needs an enumerable space; {space!r} has "
                f"{space.size:.3g} designs (limit {space.max_enumerate:,}). Use 'evolution'."
            )
        if self.warm_start is not None and self.warm_start is not False and not hasattr(
                self.warm_start, "predict"):
            space.validate(self.warm_start)
        self.space_ = space
        self.objective_ = objective
        self.method_ = method
        self.n_features_in_ = objective.n_device_columns + objective.n_lambdas
        return self

    # ------------------------------------------------------------- predict
    def _warm_designs(self, X, n_rows):
        if self.warm_start is None or self.warm_start is False:
            return None
        if hasattr(self.warm_start, "predict"):
            W = self.warm_start.predict(X)
        else:
            W = self.warm_start
        W = self.space_.validate(W, canonicalize=True)
        if len(W) == 1:
            W = np.repeat(W, n_rows, axis=0)
        if len(W) != n_rows:
            raise ValueError(
                f"warm_start holds {len(W)} designs for {n_rows} rows; give one design "
                "per row or a single design."
            )
        return W

    def search(self, X):
        """Search every row and report the details.

        Parameters
        ----------
        X : array-like of shape (n_rows, n_device_columns + n_lambdas)

        Returns
        -------
        result : Bunch
            ``designs`` (n_rows, n_choices) int, ``objective`` (predicted f of
            each design at its row's λ), ``n_evaluations``, ``search_time``
            (seconds) per row, and ``method``; the last two are also stored as
            :attr:`n_evaluations_` and :attr:`search_time_`.
        """
        result = self._search(X)
        self.n_evaluations_ = result.n_evaluations
        self.search_time_ = result.search_time
        return result

    def _search(self, X):
        check_is_fitted(self, "objective_")
        obj = self.objective_
        D, lam = obj.split(X)
        n = len(D)
        warm = self._warm_designs(X, n)
        rng = check_random_state(self.random_state)
        row_seeds = rng.randint(_MAX_SEED, size=n)
        designs = np.zeros((n, self.space_.n_choices), np.int64)
        values = np.zeros(n)
        n_eval = np.zeros(n, np.int64)
        seconds = np.zeros(n)

        if self.method_ == "exhaustive":
            all_designs = self.space_.enumerate()
            groups = {}
            for i, row in enumerate(D):
                groups.setdefault(row.tobytes(), []).append(i)
            groups = [np.array(g) for g in groups.values()]
            tasks = (delayed(exhaustive_search)(obj, all_designs, D[g[0]], lam[g])
                     for g in groups)
        else:
            # Only the scalars travel with each task (the predictors ride in obj).
            params = {k: getattr(self, k) for k in (
                "population_size", "n_cycles", "sample_size", "n_offspring", "n_mutations",
                "crossover", "n_candidates")}
            groups = [np.array([i]) for i in range(n)]
            tasks = (
                delayed(_search_row)(obj, self.method_, params, D[i], lam[i],
                                     None if warm is None else warm[i], row_seeds[i])
                for i in range(n)
            )
        results = Parallel(n_jobs=self.n_jobs, return_as="generator")(tasks)
        done, step = 0, 1 if self.verbose > 1 else max(1, n // 10)
        for g, res in zip(groups, results):
            if self.method_ == "exhaustive":
                designs[g], values[g] = res[0], res[1]
                n_eval[g] = len(all_designs)
                seconds[g] = res[2] / len(g)
            else:
                designs[g], values[g], n_eval[g], seconds[g] = res
            prev, done = done, done + len(g)
            if self.verbose and (done // step > prev // step or done == n):
                print(f"[SearchBaseline] {done}/{n} rows searched ({self.method_})", flush=True)
        return Bunch(designs=designs, objective=values, n_evaluations=n_eval,
                     search_time=seconds, method=self.method_)

    def predict(self, X, return_objective=False):
        """Best design found for each row.

        Parameters
        ----------
        X : array-like of shape (n_rows, n_device_columns + n_lambdas)
            ``[device columns..., λ_lat(, λ_en)]`` per row.
        return_objective : bool, default=False
            Also return the predicted objective of each design.

        Returns
        -------
        designs : ndarray of int64, shape (n_rows, n_choices)
        objective : ndarray of float, shape (n_rows,)
            Only with ``return_objective=True``.
        """
        res = self._search(X)
        return (res.designs, res.objective) if return_objective else res.designs

    def score(self, X, y=None):
        """Negative mean predicted objective of the designs found (higher is better).

        Parameters
        ----------
        X : array-like of shape (n_rows, n_device_columns + n_lambdas)
        y : None
            Ignored.

        Returns
        -------
        score : float
        """
        return -float(np.mean(self._search(X).objective))
