"""SearchBaseline: exact, evolutionary and random per-row search on the predicted objective."""

import io

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator

from skedge import SearchBaseline
from skedge.optimize import Objective
from skedge.optimize import _engines as engines
from skedge.pipelines import make_accuracy_pipeline, make_performance_pipeline
from skedge.spaces import FBNetSpace

TINY = dict(hidden_layer_sizes=(16,), max_epochs=5, random_state=0)
# Evolution small enough for a loaded 2-core machine, large enough to find NB201 optima.
EVO = dict(method="evolution", population_size=50, n_cycles=300, sample_size=10, n_offspring=30)


@pytest.fixture(scope="module")
def setup(synthetic_objective):
    """Tiny predictors on synthetic data: 3x3 convs are accurate and slow."""
    s, acc, lat, obj, D = synthetic_objective
    # Two rows share device 0 (exhaustive search groups them), one is device 1.
    rows = np.array([np.r_[D[0], 0.0], np.r_[D[0], 0.05], np.r_[D[1], 0.3]])
    return s, acc, lat, obj, rows, D


def brute_force(obj, row):
    f = obj.value(obj.space.enumerate(), row)
    return obj.space.enumerate()[f.argmin()], f.min(), f


def test_exhaustive_finds_true_minimum(setup):
    s, acc, lat, obj, rows, _ = setup
    est = SearchBaseline(space=s, accuracy=acc, latency=lat, method="exhaustive").fit(rows)
    designs, values = est.predict(rows, return_objective=True)
    assert designs.shape == (3, 6) and designs.dtype == np.int64
    for i, row in enumerate(rows):
        best, fmin, _ = brute_force(obj, row)
        assert values[i] == pytest.approx(fmin, abs=1e-9)
        assert obj.value(designs[i], row)[0] == pytest.approx(fmin, abs=1e-9)
        np.testing.assert_array_equal(designs[i], best)
    assert not hasattr(est, "n_evaluations_")  # predict leaves the estimator unchanged
    est.search(rows)
    np.testing.assert_array_equal(est.n_evaluations_, [15625] * 3)
    assert est.search_time_.shape == (3,) and (est.search_time_ > 0).all()
    assert est.score(rows) == pytest.approx(-values.mean())


def test_auto_resolves_method(setup):
    s, acc, lat, _, rows, _ = setup
    assert SearchBaseline(space=s, accuracy=acc, latency=lat).fit(rows).method_ == "exhaustive"
    est = SearchBaseline(space="nb201", accuracy=acc, latency=lat, max_exhaustive=100)
    assert est.fit(rows).method_ == "evolution"


def test_evolution_near_optimum_and_deterministic(setup):
    s, acc, lat, obj, rows, _ = setup
    est = SearchBaseline(space=s, accuracy=acc, latency=lat, random_state=0, **EVO).fit(rows)
    res = est.search(rows)
    for i, row in enumerate(rows):
        _, fmin, f = brute_force(obj, row)
        gap = res.objective[i] - fmin
        assert gap >= -1e-9
        # Within 2% of the objective's range over the whole space.
        assert gap <= 0.02 * (f.max() - fmin), (i, gap)
        assert obj.value(res.designs[i], row)[0] == pytest.approx(res.objective[i], abs=1e-9)
    # Batched generations + caching: far fewer distinct designs than 15,625.
    assert (res.n_evaluations <= 50 + 300).all() and (res.n_evaluations > 50).all()
    again = est.predict(rows)
    np.testing.assert_array_equal(again, res.designs)
    other = clone(est).set_params(random_state=1)
    assert other.random_state == 1


def test_crossover_and_random_methods(setup):
    s, acc, lat, obj, rows, _ = setup
    cx = SearchBaseline(space=s, accuracy=acc, latency=lat, crossover=True, random_state=0,
                        **EVO).fit(rows)
    a, b = cx.predict(rows[:1]), cx.predict(rows[:1])
    np.testing.assert_array_equal(a, b)
    s.validate(a)
    rnd = SearchBaseline(space=s, accuracy=acc, latency=lat, method="random", n_candidates=64,
                         random_state=0).fit(rows)
    d, v = rnd.predict(rows, return_objective=True)
    assert (rnd.search(rows).n_evaluations <= 64).all()
    # The best of its candidates: no better than exact, equal to the best re-scored sample.
    for i, row in enumerate(rows):
        assert v[i] >= brute_force(obj, row)[1] - 1e-9
    np.testing.assert_array_equal(rnd.predict(rows), d)


def test_larger_latency_weight_gives_faster_designs(setup):
    s, acc, lat, obj, _, D = setup
    lams = np.array([0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0])
    rows = np.hstack([np.repeat(D[2:3], len(lams), 0), lams[:, None]])
    est = SearchBaseline(space=s, accuracy=acc, latency=lat, method="exhaustive").fit(rows)
    m = obj.metrics(est.predict(rows), D[2])
    # Exact minimizers of -acc + λ·lat: latency and accuracy never rise with λ.
    assert np.all(np.diff(m["latency"]) <= 1e-9)
    assert np.all(np.diff(m["accuracy"]) <= 1e-9)
    assert m["latency"][-1] < m["latency"][0]


def test_n_jobs_and_dask_give_same_designs(setup):
    s, acc, lat, _, rows, _ = setup
    params = dict(space=s, accuracy=acc, latency=lat, random_state=3, **dict(EVO, n_cycles=60))
    serial = SearchBaseline(**params).fit(rows).predict(rows)
    # Threads: loky workers would first import torch (~10 s on a loaded machine); the
    # point is that per-row seeds make the result independent of the scheduling.
    with joblib.parallel_config(backend="threading"):
        parallel = SearchBaseline(**params, n_jobs=2).fit(rows).predict(rows)
    np.testing.assert_array_equal(serial, parallel)

    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        with distributed.get_task_stream(client) as stream, \
                joblib.parallel_config(backend="dask"):
            on_dask = SearchBaseline(**params).fit(rows).predict(rows)
            exact = SearchBaseline(space=s, accuracy=acc, latency=lat,
                                   method="exhaustive").fit(rows).predict(rows)
        # The searches really ran as tasks on the cluster's workers.
        assert len(stream.data) >= 2
        assert {t["worker"] for t in stream.data} <= set(client.scheduler_info()["workers"])
    np.testing.assert_array_equal(serial, on_dask)
    exact_serial = SearchBaseline(space=s, accuracy=acc, latency=lat,
                                  method="exhaustive").fit(rows).predict(rows)
    np.testing.assert_array_equal(exact, exact_serial)


def test_warm_start_seeds_the_search(setup):
    s, acc, lat, obj, rows, _ = setup
    exact = SearchBaseline(space=s, accuracy=acc, latency=lat, method="exhaustive").fit(rows)
    best = exact.predict(rows)
    # Without cycles the answer is the best initial member: the warm design.
    evo0 = dict(EVO, n_cycles=0, random_state=0)
    cold = SearchBaseline(space=s, accuracy=acc, latency=lat, **evo0).fit(rows)
    assert not (cold.predict(rows) == best).all(axis=1).all()
    warm = SearchBaseline(space=s, accuracy=acc, latency=lat, warm_start=best, **evo0).fit(rows)
    np.testing.assert_array_equal(warm.predict(rows), best)
    # A fitted optimizer as the warm start, and random search keeps the warm design.
    by_model = SearchBaseline(space=s, accuracy=acc, latency=lat, method="random",
                              n_candidates=1, warm_start=exact, random_state=0).fit(rows)
    np.testing.assert_array_equal(by_model.predict(rows), best)
    one = SearchBaseline(space=s, accuracy=acc, latency=lat, warm_start=best[0], **evo0)
    _, v = one.fit(rows).predict(rows, return_objective=True)
    assert v[0] == pytest.approx(brute_force(obj, rows[0])[1])
    with pytest.raises(ValueError, match="warm_start holds 2 designs for 3 rows"):
        SearchBaseline(space=s, accuracy=acc, latency=lat, warm_start=best[:2],
                       **evo0).fit(rows).predict(rows)
    with pytest.raises(ValueError, match="outside"):
        SearchBaseline(space=s, accuracy=acc, latency=lat, warm_start=[[9] * 6]).fit(rows)


def test_bad_input(setup):
    s, acc, lat, _, rows, D = setup
    est = SearchBaseline(space=s, accuracy=acc, latency=lat, method="exhaustive")
    with pytest.raises(NotFittedError):
        est.predict(rows)
    est.fit(rows)
    with pytest.raises(ValueError, match="λ must be finite and >= 0"):
        est.predict(np.r_[D[0], -0.1][None])
    with pytest.raises(ValueError, match="λ must be finite and >= 0"):
        est.predict(np.r_[D[0], np.inf][None])
    with pytest.raises(ValueError, match="13 columns"):
        est.predict(D[:2])
    with pytest.raises(ValueError, match="infinite"):
        est.predict(np.r_[np.full(12, np.inf), 0.1][None])
    with pytest.raises(ValueError, match="13 columns"):
        SearchBaseline(space=s, accuracy=acc, latency=lat).fit(D)
    with pytest.raises(ValueError, match="sample_size=60 exceeds population_size=50"):
        SearchBaseline(space=s, accuracy=acc, latency=lat, population_size=50,
                       sample_size=60).fit(rows)
    with pytest.raises(ValueError, match="method"):
        SearchBaseline(space=s, accuracy=acc, latency=lat, method="greedy").fit(rows)
    with pytest.raises(ValueError, match="population_size"):
        SearchBaseline(space=s, accuracy=acc, latency=lat, population_size=1).fit(rows)


def test_predictor_errors(setup):
    s, acc, lat, _, rows, D = setup
    unfitted = make_accuracy_pipeline(s, **TINY)
    with pytest.raises(ValueError, match="accuracy predictor is not fitted.*FrozenEstimator"):
        SearchBaseline(space=s, accuracy=unfitted, latency=lat).fit(rows)
    with pytest.raises(ValueError, match="accuracy predictor was built for NB201Space"):
        SearchBaseline(space="fbnet", accuracy=acc, latency=lat).fit(rows)
    acc_any = FrozenEstimator(_acc_without_space(s, acc))
    with pytest.raises(ValueError, match="latency predictor was built for NB201Space"):
        SearchBaseline(space="fbnet", accuracy=acc_any, latency=lat).fit(rows)
    # With no declared space, a wrong accuracy predictor shows up as a width mismatch.
    fb = FBNetSpace()
    Xf = fb.sample(100, 0)
    lat_fb = make_performance_pipeline(fb, hidden_layer_sizes=(4,), max_epochs=1).fit(
        np.hstack([Xf, D[:100]]), np.ones(100))
    with pytest.raises(ValueError, match="accuracy predictor does not accept designs of FBNet"):
        SearchBaseline(space=fb, accuracy=acc_any, latency=lat_fb).fit(rows)
    # A predictor that cannot impute: NaN device columns are rejected.
    sig = make_performance_pipeline(s, device_features=False, n_signature=12, **TINY)
    X = s.sample(200, 1)
    # Pair rows: design, the (unused) spec columns, then the 12 signature columns.
    sig.fit(np.hstack([X, D[:200], D[:200] + 1]), np.exp(0.3 * (X == 3).sum(1)))
    sig_rows = np.hstack([D[:1], D[:1] + 1, [[0.1]]])
    est = SearchBaseline(space=s, accuracy=acc, latency=sig, method="random",
                         n_candidates=8).fit(sig_rows)
    bad = sig_rows.copy()
    bad[0, 15] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.predict(bad)


def _acc_without_space(s, acc):
    """An accuracy pipeline of the right space but whose encoder names no space."""
    from skedge.preprocessing import DesignOneHotEncoder

    pipe = clone(acc)
    pipe.set_params(design=DesignOneHotEncoder(space=None))
    X = s.sample(100, 0)
    return pipe.set_params(regressor__max_epochs=1).fit(X, 80 + (X == 3).sum(1))


def test_clone_get_params_and_frozen_predictors(setup):
    s, acc, lat, _, rows, _ = setup
    est = SearchBaseline(space=s, accuracy=acc, latency=lat, method="exhaustive", n_jobs=1)
    params = est.get_params(deep=False)
    assert params["method"] == "exhaustive" and params["accuracy"] is acc
    assert "accuracy__regressor__max_epochs" in est.get_params(deep=True)
    # clone unfits predictors given as parameters: fit says how to keep them.
    with pytest.raises(ValueError, match="FrozenEstimator"):
        clone(est).fit(rows)
    frozen = SearchBaseline(space=s, accuracy=FrozenEstimator(acc),
                            latency=FrozenEstimator(lat), method="exhaustive")
    np.testing.assert_array_equal(
        clone(frozen).fit(rows).predict(rows), est.fit(rows).predict(rows)
    )


def test_joblib_round_trip(setup):
    s, acc, lat, _, rows, _ = setup
    for params in (dict(method="exhaustive"), dict(EVO, n_cycles=60, random_state=0)):
        est = SearchBaseline(space=s, accuracy=acc, latency=lat, **params).fit(rows)
        buf = io.BytesIO()
        joblib.dump(est, buf)
        buf.seek(0)
        loaded = joblib.load(buf)
        d1, v1 = est.predict(rows, return_objective=True)
        d2, v2 = loaded.predict(rows, return_objective=True)
        np.testing.assert_array_equal(d1, d2)
        np.testing.assert_array_equal(v1, v2)


def test_energy_objective_and_verbose(setup, capsys):
    s, acc, lat, _, rows, _ = setup
    # The latency predictor stands in for energy: the objective gains a λ column.
    obj = Objective(s, acc, lat, lat)
    rows2 = np.hstack([rows, [[0.0], [0.2], [0.1]]])
    est = SearchBaseline(space=s, accuracy=acc, latency=lat, energy=lat, method="exhaustive",
                         verbose=2).fit(rows2)
    _, v = est.predict(rows2, return_objective=True)
    for i, row in enumerate(rows2):
        assert v[i] == pytest.approx(obj.value(s.enumerate(), row).min(), abs=1e-9)
    out = capsys.readouterr().out
    assert "[SearchBaseline] 3/3 rows searched (exhaustive)" in out
    with pytest.raises(ValueError, match="14 columns"):
        est.predict(rows)


def test_greedy_refine_in_batches_matches_one_batch(setup, monkeypatch):
    # Greedy rounds score the moves of a few rows at a time (memory); each row's move
    # depends on that row alone, so the batching must not change any design.
    s, _, _, obj, _, D = setup
    rng = np.random.RandomState(0)
    rows = np.column_stack([D[rng.randint(len(D), size=40)], rng.uniform(0, 0.5, 40)])
    Dr, lam = obj.split(rows)
    refs = obj.references(Dr)
    start = s.sample(40, random_state=1)
    results = []
    for batch in (10**9, 50):  # one batch; about two rows per batch
        monkeypatch.setattr(engines, "_REFINE_BATCH", batch)
        designs, values = start.copy(), obj.value(start, rows)
        results.append(engines.greedy_refine(obj, designs, values, Dr, lam, refs, 3))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_allclose(results[0][1], results[1][1])
    assert (results[0][1] < obj.value(start, rows) - 1e-12).any()


def test_unique_device_rows_match_numpy_unique():
    # The run-compressed unique of device rows must give np.unique's result (NaN equal to
    # NaN), for rows repeated in blocks as a search passes them and for shuffled ones.
    from skedge.optimize._objective import _unique_rows

    rng = np.random.RandomState(0)
    for _ in range(100):
        base = rng.randint(0, 3, size=(rng.randint(1, 6), 3)).astype(float)
        base[rng.rand(*base.shape) < 0.2] = np.nan
        D = np.repeat(base[rng.randint(len(base), size=rng.randint(2, 40))],
                      rng.randint(1, 4), axis=0)
        key = np.where(np.isnan(D), np.inf, D)
        expected, inverse = np.unique(key, axis=0, return_inverse=True)
        uniq, inv = _unique_rows(D)
        np.testing.assert_array_equal(np.where(np.isnan(uniq), np.inf, uniq), expected)
        np.testing.assert_array_equal(inv, inverse.ravel())
