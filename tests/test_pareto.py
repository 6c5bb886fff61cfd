"""Pareto fronts, constrained selection and hypervolume of predicted trade-offs."""

import numpy as np
import pandas as pd
import pytest

from skedge import SearchBaseline
from skedge.optimize import (
    Objective,
    best_under_constraints,
    hypervolume_2d,
    non_dominated,
    pareto_front,
    plot_pareto_front,
)


@pytest.fixture(scope="module")
def setup(synthetic_objective):
    s, acc, lat, obj, D = synthetic_objective
    all_designs = s.enumerate()
    m = obj.metrics(all_designs, D[0])
    return s, acc, lat, obj, D[0], all_designs, m


def _brute_non_dominated(P):
    P = np.asarray(P, float)
    dom = (P[None, :, :] <= P[:, None, :]).all(2) & (P[None, :, :] < P[:, None, :]).any(2)
    return ~dom.any(axis=1)


def test_non_dominated_small_examples():
    pts = np.array([[1, 5], [2, 3], [3, 4], [4, 1], [2, 3], [5, 5]])
    np.testing.assert_array_equal(non_dominated(pts), [1, 1, 0, 1, 1, 0])
    # Maximizing the first column flips which points survive.
    np.testing.assert_array_equal(
        non_dominated(pts, maximize=[True, False]), [0, 0, 0, 1, 0, 1]
    )
    assert non_dominated(np.zeros((0, 2))).shape == (0,)
    with pytest.raises(ValueError, match="NaN or infinite"):
        non_dominated([[1, np.nan]])
    with pytest.raises(ValueError, match="one flag per column"):
        non_dominated(pts, maximize=[True])
    with pytest.raises(ValueError, match="2-D"):
        non_dominated([1, 2, 3])


@pytest.mark.parametrize("k", [2, 3])
def test_non_dominated_matches_brute_force(k):
    rng = np.random.RandomState(k)
    P = np.round(rng.rand(300, k) * 10)  # rounding makes ties and duplicates
    np.testing.assert_array_equal(non_dominated(P), _brute_non_dominated(P))


def test_hypervolume_hand_computed():
    # Rectangles [60,70]x[1,5] and [60,80]x[3,5]: 40 + 40 - 20 overlap.
    assert hypervolume_2d([[70, 1.0], [80, 3.0]], ref=(60, 5.0)) == pytest.approx(60.0)
    # Dominated points and points beyond the reference add nothing.
    pts = [[70, 1.0], [80, 3.0], [75, 3.5], [50, 0.5], [90, 6.0]]
    assert hypervolume_2d(pts, ref=(60, 5.0)) == pytest.approx(60.0)
    assert hypervolume_2d(pd.DataFrame(pts[:2], columns=["accuracy", "latency"]),
                          ref=(60, 5.0)) == pytest.approx(60.0)
    assert hypervolume_2d(np.zeros((0, 2)), ref=(0, 1)) == 0.0
    assert hypervolume_2d([[65, 2.0]], ref=(60, 5.0)) == pytest.approx(15.0)
    with pytest.raises(ValueError, match="ref"):
        hypervolume_2d([[70, 1.0]], ref=(60,))


def test_front_from_all_designs_is_exact(setup):
    s, _, _, obj, d, A, m = setup
    front = pareto_front(obj, d)  # an Objective of an enumerable space: all designs
    assert list(front.columns) == ["design", "accuracy", "latency", "lambda_latency"]
    assert front["latency"].is_monotonic_increasing
    assert front["accuracy"].is_monotonic_increasing  # slower designs must be more accurate
    assert front["lambda_latency"].isna().all()
    assert front["design"].is_unique
    # No NB201 design dominates a front point, and every design is matched by one.
    acc_all, lat_all = m["accuracy"], m["latency"]
    for a, t in zip(front["accuracy"], front["latency"]):
        assert not ((acc_all >= a) & (lat_all <= t) & ((acc_all > a) | (lat_all < t))).any()
    mask = non_dominated(np.c_[acc_all, lat_all], maximize=[True, False])
    assert mask.sum() == len(front)
    fa = s.from_strings(front["design"])
    np.testing.assert_allclose(obj.metrics(fa, d)["latency"], front["latency"])
    # Candidates given explicitly: the front among them only.
    sub = pareto_front(obj, d, designs=A[::50])
    assert len(sub) >= 1 and set(sub["design"]) <= set(s.to_strings(A[::50]))


def test_front_from_lambda_sweep(setup):
    s, acc, lat, obj, d, _, m = setup
    rows = np.r_[d, 0.0][None]
    search = SearchBaseline(space=s, accuracy=acc, latency=lat, method="exhaustive").fit(rows)
    front = pareto_front(search, d)
    exact = pareto_front(obj, d)
    # Exact minimizers of a weighted sum are supported Pareto points.
    assert set(front["design"]) <= set(exact["design"])
    assert len(front) >= 3
    assert front["latency"].is_monotonic_increasing
    # Faster designs need more latency pressure.
    assert front["lambda_latency"].is_monotonic_decreasing
    assert front["lambda_latency"].notna().all()
    hv_sweep = hypervolume_2d(front, ref=(m["accuracy"].min(), m["latency"].max()))
    hv_exact = hypervolume_2d(exact, ref=(m["accuracy"].min(), m["latency"].max()))
    assert 0.5 < hv_sweep / hv_exact <= 1.0 + 1e-12
    custom = pareto_front(search, d, lambdas=[0.0, 10.0])
    assert set(custom["lambda_latency"]) <= {0.0, 10.0}
    with pytest.raises(ValueError, match="objective"):
        pareto_front(object(), d, designs="all")
    with pytest.raises(ValueError, match="12 device columns"):
        pareto_front(obj, d[:5])
    with pytest.raises(ValueError, match="λ sweep needs an optimizer"):
        pareto_front(_NoPredict(), d, objective=obj)
    with pytest.raises(ValueError, match="shape"):
        pareto_front(search, d, lambdas=np.ones((3, 2)))


class _NoPredict:
    pass


def test_energy_front_has_three_metrics(setup):
    s, acc, lat, _, d, A, _ = setup
    obj2 = Objective(s, acc, lat, lat)  # latency stands in for energy
    front = pareto_front(obj2, d, designs=A[::10])
    assert {"energy", "lambda_energy"} <= set(front.columns)
    with pytest.raises(ValueError, match=r"\(λ_lat, λ_en\)"):
        pareto_front(SearchBaseline(space=s, accuracy=acc, latency=lat, energy=lat,
                                    method="exhaustive").fit(np.r_[d, 0, 0][None]),
                     d, lambdas=[0.1, 1.0])


def test_best_under_constraints_exact(setup):
    s, _, _, obj, d, A, m = setup
    budget = float(np.quantile(m["latency"], 0.3))
    best = best_under_constraints(obj, d, max_latency=budget)
    assert best.exact and best.n_candidates == len(A)
    assert best.latency <= budget
    ok = m["latency"] <= budget
    assert best.accuracy == pytest.approx(m["accuracy"][ok].max())
    assert best.design_string == s.to_string(best.design)
    # Infeasible budgets fail clearly, naming the smallest latency found.
    with pytest.raises(ValueError, match="smallest predicted latency found is"):
        best_under_constraints(obj, d, max_latency=0.5 * m["latency"].min())
    with pytest.raises(ValueError, match="max_latency and/or max_energy"):
        best_under_constraints(obj, d)
    with pytest.raises(ValueError, match="energy predictor"):
        best_under_constraints(obj, d, max_energy=1.0)
    with pytest.raises(ValueError, match="positive finite"):
        best_under_constraints(obj, d, max_latency=-1.0)


def test_best_under_constraints_heuristic_and_candidates(setup):
    s, acc, lat, obj, d, A, m = setup
    budget = float(np.quantile(m["latency"], 0.3))
    exact = best_under_constraints(obj, d, max_latency=budget)
    search = SearchBaseline(space=s, accuracy=acc, latency=lat, method="exhaustive")
    search.fit(np.r_[d, 0.0][None])
    # Pretend the space is too large to enumerate: λ sweep + penalized evolution.
    heur = best_under_constraints(search, d, max_latency=budget, max_exhaustive=10,
                                  population_size=40, n_cycles=400, random_state=0)
    assert not heur.exact and heur.latency <= budget
    assert heur.n_candidates < len(A)
    assert heur.accuracy >= exact.accuracy - 0.5
    again = best_under_constraints(search, d, max_latency=budget, max_exhaustive=10,
                                   population_size=40, n_cycles=400, random_state=0)
    np.testing.assert_array_equal(heur.design, again.design)
    few = best_under_constraints(obj, d, max_latency=budget, designs=A[::25])
    assert not few.exact and few.latency <= budget and few.accuracy <= exact.accuracy
    # Energy budget with an energy objective.
    obj2 = Objective(s, acc, lat, lat)
    both = best_under_constraints(obj2, d, max_latency=budget, max_energy=budget)
    assert both.energy <= budget and both.accuracy == pytest.approx(exact.accuracy)


def test_plot_returns_axes(setup):
    _, _, _, obj, d, _, _ = setup
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    front = pareto_front(obj, d)
    ax = plot_pareto_front(front, label="exact", annotate=True)
    assert ax.get_xlabel() == "predicted latency"
    assert len(ax.collections) == 1 and len(ax.lines) == 1
    assert ax.get_legend() is not None
    _, ax2 = plt.subplots()
    assert plot_pareto_front(front, ax=ax2, step=False) is ax2 and len(ax2.lines) == 0
    plt.close("all")


def test_objective_metrics_match_the_predictors(synthetic_objective):
    """The objective's torch fast path gives what the fitted pipelines predict."""
    s, acc, lat, obj, D = synthetic_objective
    X = s.sample(300, random_state=1)
    rows = D[np.arange(300) % 7].copy()  # repeated devices: each encoded once
    rows[::5, 9] = np.nan  # imputed by the spec-feature encoder
    m = obj.metrics(X, rows)
    np.testing.assert_allclose(m["accuracy"], acc.predict(X), rtol=1e-6)
    np.testing.assert_allclose(m["latency"], lat.predict(np.hstack([X, rows])), rtol=1e-6)
    one = obj.metrics(X, D[3])  # a single device row is broadcast
    np.testing.assert_allclose(one["latency"], lat.predict(np.hstack([X, np.tile(D[3], (300, 1))])),
                               rtol=1e-6)
    refs = obj.references(D[np.arange(14) % 7])
    np.testing.assert_allclose(refs[:7], refs[7:])
    np.testing.assert_allclose(refs[:1], obj.references(D[0]))
    with pytest.raises(ValueError, match="one device row or one per design"):
        obj.metrics(X, rows[:2])


def test_true_value_with_the_predictions_as_truth_is_the_value(synthetic_objective):
    """``true_value`` normalizes truth as ``value`` normalizes predictions."""
    s, _, _, obj, D = synthetic_objective
    X = s.sample(12, random_state=2)
    names = [f"d{i % 3}" for i in range(12)]
    rows = {f"d{i}": D[i] for i in range(3)}
    lam = np.linspace(0.01, 0.3, 12)[:, None]

    def truth(designs, devices):  # "measured" = what the predictors say
        return obj.metrics(designs, np.array([rows[d] for d in devices]))

    expected = obj.value(X, np.column_stack([[rows[d] for d in names], lam]))
    np.testing.assert_allclose(obj.true_value(truth, X, names, lam), expected, rtol=1e-9)
    # Another truth, twice as slow everywhere: the normalized objective does not move.
    slow = lambda Z, d: {**truth(Z, d), "latency": 2 * truth(Z, d)["latency"]}
    np.testing.assert_allclose(obj.true_value(slow, X, names, lam), expected, rtol=1e-9)
