"""Behaviour of the predictors, encoders, pipelines and the differentiable path."""

import joblib
import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import make_pipeline

from skedge import AccuracyRegressor, DevicePerformanceRegressor
from skedge.datasets import make_edge_benchmark, to_pairs
from skedge.devices import DEVICE_FEATURES
from skedge.differentiable import torch_predictor
from skedge.fewshot import FewShotAdapter
from skedge.pipelines import make_accuracy_pipeline, make_performance_pipeline
from skedge.preprocessing import (
    DesignEmbedding,
    DesignOneHotEncoder,
    DeviceEmbedding,
    DeviceFeatureEncoder,
    DeviceSignatureEncoder,
)
from skedge.spaces import NB201Space

TINY = dict(hidden_layer_sizes=(32, 32), max_epochs=30, batch_size=256, random_state=0)


@pytest.fixture(scope="module")
def bench():
    return make_edge_benchmark("nb201", n_designs=300, n_devices=8, random_state=0)


@pytest.fixture(scope="module")
def pairs(bench):
    return to_pairs(bench, signature=bench.reference_idx)


@pytest.fixture(scope="module")
def perf(bench, pairs):
    X, y, _ = pairs
    return make_performance_pipeline(bench.space, n_signature=10, **TINY).fit(X, y)


def test_performance_pipeline_learns_and_outputs_float64(bench, pairs, perf):
    X, y, _ = pairs
    pred = perf.predict(X)
    assert pred.dtype == np.float64 and pred.shape == y.shape
    rho = np.corrcoef(np.log(pred), np.log(y))[0, 1]
    assert rho > 0.9


def test_log_target_is_default_for_positive_targets(perf):
    assert perf.named_steps["regressor"].target_transform_ == "log"


def test_ensemble_reports_spread_and_keeps_torch_rng():
    rng = np.random.RandomState(0)
    X = rng.rand(200, 4)
    y = np.exp(X @ [1.0, -1.0, 0.5, 2.0])
    before = torch.random.get_rng_state().clone()
    reg = DevicePerformanceRegressor(n_estimators=3, **TINY).fit(X, y)
    assert torch.equal(before, torch.random.get_rng_state())
    mean, std = reg.predict(X, return_std=True)
    assert len(reg.estimators_) == 3
    assert std.shape == mean.shape and np.all(std >= 0) and std.mean() > 0
    single = DevicePerformanceRegressor(n_estimators=1, **TINY).fit(X, y)
    assert np.all(single.predict(X, return_std=True)[1] == 0)


def test_same_seed_same_model():
    rng = np.random.RandomState(1)
    X, y = rng.rand(150, 3), rng.rand(150)
    a = AccuracyRegressor(**TINY).fit(X, y).predict(X)
    b = AccuracyRegressor(**TINY).fit(X, y).predict(X)
    np.testing.assert_array_equal(a, b)


def test_n_threads_applies_during_fit_and_predict_only(monkeypatch):
    import skedge._torch as st

    rng = np.random.RandomState(1)
    X, y = rng.rand(150, 3), rng.rand(150)
    seen = []
    real_fit = st.fit_regression_net

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real_fit(*args, **kwargs)

    monkeypatch.setattr("skedge.predictors.fit_regression_net", spy)
    before = torch.get_num_threads()
    reg = AccuracyRegressor(n_threads=1, **TINY).fit(X, y)
    # One fit per ensemble member (3 by default), each with the thread count asked for.
    assert seen == [1] * reg.n_estimators and torch.get_num_threads() == before
    reg.predict(X)
    assert torch.get_num_threads() == before
    # The thread count changes summation order only, not the model.
    np.testing.assert_allclose(
        reg.predict(X), AccuracyRegressor(**TINY).fit(X, y).predict(X), rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="n_threads"):
        AccuracyRegressor(n_threads=0).fit(X, y)


def test_gridsearch_over_hidden_sizes_inside_pipeline(bench):
    X, y, groups = to_pairs(bench)
    pipe = make_performance_pipeline(bench.space, **{**TINY, "max_epochs": 5})
    search = GridSearchCV(
        pipe,
        {"regressor__hidden_layer_sizes": [(8,), (16, 16)]},
        cv=GroupKFold(n_splits=2),
    ).fit(X, y, groups=groups)
    assert search.best_params_["regressor__hidden_layer_sizes"] in [(8,), (16, 16)]
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_joblib_round_trip_predicts_identically(tmp_path, pairs, perf):
    X, _, _ = pairs
    path = tmp_path / "perf.joblib"
    joblib.dump(perf, path)
    loaded = joblib.load(path)
    np.testing.assert_array_equal(loaded.predict(X), perf.predict(X))


def test_differentiable_path_agrees_with_predict_on_hard_designs(bench, pairs, perf):
    X, _, _ = pairs
    space = bench.space
    f = torch_predictor(perf, space)
    rows = X[:50]
    designs = rows[:, : space.n_choices].astype(int)
    P = torch.tensor(DesignOneHotEncoder(space=space).fit(designs).transform(designs),
                     dtype=torch.float32, requires_grad=True)
    out = f(P, rows[:, space.n_choices:])
    np.testing.assert_allclose(out.detach().numpy(), perf.predict(rows), rtol=1e-4)
    out.sum().backward()
    assert P.grad is not None and torch.isfinite(P.grad).all()
    # The predictor itself is frozen: the exported copy holds no gradient-enabled weights.
    assert not any(p.requires_grad for net in f._regressor.estimators_
                   for p in net.module_.parameters())


def test_differentiable_accuracy_and_embedding(bench):
    space = bench.space
    acc = make_pipeline(DesignEmbedding(space=space, n_components=4),
                        AccuracyRegressor(**TINY)).fit(bench.designs, bench.accuracy)
    f = torch_predictor(acc, space)
    P = torch.tensor(DesignOneHotEncoder(space=space).fit(bench.designs)
                     .transform(bench.designs[:20]), dtype=torch.float32)
    np.testing.assert_allclose(f(P).numpy(), acc.predict(bench.designs[:20]), rtol=1e-4)


def test_hard_designs_fast_path_matches_the_soft_path(bench, pairs, perf):
    # The search's path: the first layer folded into per-option columns and a term per
    # device row; the same values as the soft path on one-hot designs, for one device
    # row broadcast or one per design, and for an encoder that cannot be folded.
    X, _, _ = pairs
    space = bench.space
    acc_emb = make_pipeline(DesignEmbedding(space=space, n_components=4),
                            AccuracyRegressor(**TINY)).fit(bench.designs, bench.accuracy)
    acc = make_accuracy_pipeline(space, **TINY).fit(bench.designs, bench.accuracy)
    rows = X[::37][:40]
    designs = rows[:, : space.n_choices].astype(int)
    codes = torch.as_tensor(designs + space.option_offsets)
    P = torch.tensor(DesignOneHotEncoder(space=space).fit(designs).transform(designs),
                     dtype=torch.float32)
    f = torch_predictor(perf, space)
    uniq, rows_of = np.unique(rows[:, space.n_choices:], axis=0, return_inverse=True)
    with torch.no_grad():
        soft = f(P, rows[:, space.n_choices:])
        hard = f.hard(codes, f.encode_devices(uniq), torch.as_tensor(rows_of.ravel()))
        one = f.hard(codes, f.encode_devices(uniq[:1]))
        assert f._fold is not None
        np.testing.assert_allclose(hard.numpy(), soft.numpy(), rtol=1e-5)
        np.testing.assert_allclose(one.numpy(), f(P, uniq[:1]).numpy(), rtol=1e-5)
        for pipe in (acc, acc_emb):
            g = torch_predictor(pipe, space)
            np.testing.assert_allclose(g.hard(codes).numpy(), g(P).numpy(), rtol=1e-5)
        assert torch_predictor(acc_emb, space)._fold is None


def test_accuracy_pipeline_on_simulator(bench):
    pipe = make_accuracy_pipeline(bench.space, **{**TINY, "batch_size": 32, "max_epochs": 60})
    pipe.fit(bench.designs, bench.accuracy)
    assert pipe.named_steps["regressor"].target_transform_ == "log-error"
    assert pipe.score(bench.designs, bench.accuracy) > 0.5


def test_accuracy_log_error_target():
    # Accuracies in percent are fitted as a log error rate: predictions stay below 100
    # and keep their order; other targets fall back to a linear fit.
    rng = np.random.RandomState(0)
    X = rng.rand(300, 3)
    y = 100 - np.exp(3 - 2 * X[:, 0])  # 80 % .. 97.3 %
    reg = AccuracyRegressor(hidden_layer_sizes=(32,), max_epochs=100, random_state=0).fit(X, y)
    assert reg.target_transform_ == "log-error"
    pred = reg.predict(np.c_[np.linspace(0, 3, 50), np.full((50, 2), 0.5)])
    assert pred.max() < 100 and pred[-1] > pred[0] + 10 and reg.score(X, y) > 0.8
    assert AccuracyRegressor(max_epochs=1).fit(X, y / 100 - 0.9).target_transform_ == "none"
    assert AccuracyRegressor(max_epochs=1).fit(X, y + 10).target_transform_ == "none"
    with pytest.raises(ValueError, match=r"log-error.*maximum 107"):
        AccuracyRegressor(target_transform="log-error", max_epochs=1).fit(X, y + 10)


def test_unseen_but_valid_option_encodes():
    space = NB201Space()
    enc = DesignOneHotEncoder(space=space).fit([[0] * 6])
    out = enc.transform([[4] * 6])
    assert out.sum() == 6 and out[0, 4] == 1


@pytest.mark.parametrize(
    "bad, match",
    [
        ([[0, 0, 0, 0, 0, 9]], "e5"),
        ([[0, 0, 0, 0, 0.5, 0]], "non-integer"),
        ([[0, 0, 0, 0, 0]], "expecting 6 features"),
    ],
)
def test_design_encoder_names_bad_input(bad, match):
    enc = DesignOneHotEncoder(space="nb201").fit([[0] * 6])
    with pytest.raises(ValueError, match=match):
        enc.transform(bad)


def test_predictor_bad_input(pairs, perf):
    X, _, _ = pairs
    bad = X[:3].copy()
    bad[0, 0] = 7  # NB201 has 5 ops per edge
    with pytest.raises(ValueError, match="e0"):
        perf.predict(bad)
    with pytest.raises(ValueError, match="features"):
        perf.predict(X[:3, :-1])
    reg = DevicePerformanceRegressor(**TINY)
    Xn = np.random.rand(20, 3)
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        reg.fit(Xn, np.ones(20))
    Xi = np.random.rand(20, 3)
    Xi[0, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        reg.fit(Xi, np.ones(20))
    with pytest.raises(ValueError, match="positive"):
        DevicePerformanceRegressor(target_transform="log", **TINY).fit(
            np.random.rand(20, 3), -np.ones(20))
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        DevicePerformanceRegressor(hidden_layer_sizes=(0,)).fit(np.random.rand(20, 3), np.ones(20))


def test_pair_table_device_errors(bench):
    with pytest.raises(ValueError, match="empty"):
        to_pairs(bench, devices=[])
    with pytest.raises(ValueError, match="unknown device 'nope'"):
        to_pairs(bench, devices=["nope"])


def test_unknown_device_specs_are_imputed_with_indicator(bench):
    D = bench.devices[list(DEVICE_FEATURES)].to_numpy().copy()
    D[0, 3] = np.nan
    enc = DeviceFeatureEncoder().fit(D)
    Z = enc.transform(D)
    assert np.isfinite(Z).all()
    names = enc.get_feature_names_out().tolist()
    assert "missingindicator_peak_gflops" in names and "kind=phone_cpu" in names
    with pytest.raises(ValueError, match="kind code"):
        bad = D[:1].copy()
        bad[0, 0] = 99
        enc.transform(bad)


def test_transformers_pandas_output(bench):
    designs = bench.designs
    out = DesignOneHotEncoder(space=bench.space).set_output(transform="pandas").fit_transform(designs)
    assert list(out.columns[:2]) == ["e0=none", "e0=skip_connect"]
    emb = DeviceEmbedding(n_components=3).set_output(transform="pandas")
    D = bench.devices[list(DEVICE_FEATURES)]
    assert list(emb.fit_transform(D).columns) == ["deviceembedding0", "deviceembedding1",
                                                  "deviceembedding2"]
    sig = DeviceSignatureEncoder().set_output(transform="pandas")
    lat = bench.latency.to_numpy().T[:, bench.reference_idx]
    assert sig.fit_transform(lat).shape == (len(D), 12)


def test_signature_encoder_without_speed_reads_the_shape_only(bench, tmp_path):
    lat = bench.latency.to_numpy().T[:, bench.reference_idx]
    shape = DeviceSignatureEncoder(with_speed=False).fit(lat)
    np.testing.assert_allclose(shape.transform(lat * 7.0), shape.transform(lat), atol=1e-9)
    assert shape.get_feature_names_out()[-1] == "sig_spread" and "sig_mean" not in \
        shape.get_feature_names_out()
    # An encoder pickled before the parameter existed read the speed, and still does.
    full = DeviceSignatureEncoder().fit(lat)
    del full.__dict__["with_speed"]
    joblib.dump(full, tmp_path / "old.joblib")
    old = joblib.load(tmp_path / "old.joblib")
    assert old.get_params() == {"with_speed": True}
    np.testing.assert_allclose(old.transform(lat), DeviceSignatureEncoder().fit(lat).transform(lat))


def test_design_embedding_learns_performance_directions(bench):
    Y = np.log(bench.latency.to_numpy())
    Y = (Y - Y.mean(0)) / Y.std(0)
    emb = DesignEmbedding(space=bench.space, n_components=2).fit(bench.designs, Y)
    Z = emb.transform(bench.designs)
    # The first component tracks the mean standardized log-latency profile.
    assert abs(np.corrcoef(Z[:, 0], Y.mean(1))[0, 1]) > 0.8


def test_few_shot_adapter_fixes_scale(bench, pairs, perf):
    X, y, groups = pairs
    dev = groups[0]
    rows = groups == dev
    Xd, yd = X[rows], y[rows] * 3.0  # a device three times slower than predicted
    adapter = FewShotAdapter(perf).fit(Xd[:10], yd[:10])
    ratio = np.median(adapter.predict(Xd) / yd)
    assert 0.8 < ratio < 1.25
    with pytest.raises(ValueError, match="positive"):
        FewShotAdapter(perf).fit(Xd[:10], -yd[:10])


def test_gridsearch_runs_on_a_dask_cluster(bench):
    """GridSearchCV spreads its fits over dask workers through joblib's dask backend."""
    distributed = pytest.importorskip("distributed")
    X, y, groups = to_pairs(bench)
    pipe = make_performance_pipeline(bench.space, **{**TINY, "max_epochs": 3})
    grid = {"regressor__hidden_layer_sizes": [(8,), (16,)]}
    serial = GridSearchCV(pipe, grid, cv=GroupKFold(n_splits=2)).fit(X, y, groups=groups)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client, joblib.parallel_config(backend="dask"), \
            distributed.get_task_stream(client) as stream:
        on_dask = GridSearchCV(pipe, grid, cv=GroupKFold(n_splits=2), n_jobs=2)
        on_dask.fit(X, y, groups=groups)
    assert len(stream.data) >= 4  # 2 candidates x 2 folds ran as dask tasks
    # Same fits: the workers are threads of this process, so they share torch's
    # global RNG; seeding is atomic and shuffling has its own generator, so the
    # concurrent fits reproduce the serial ones (before that fix they differed by
    # up to 8 %). Float reductions may still differ in the last digits.
    np.testing.assert_allclose(on_dask.cv_results_["mean_test_score"],
                               serial.cv_results_["mean_test_score"], rtol=1e-5)


def test_array_batches_cover_every_row_once_in_generator_order():
    from skorch.dataset import Dataset

    from skedge._torch import ArrayBatches

    X = np.arange(20, dtype=np.float32).reshape(10, 2)
    y = np.arange(10, dtype=np.float32)
    ds = Dataset(X, y)

    def rows(it):
        return np.concatenate([yb.numpy() for _, yb in it]).astype(int)

    def shuffled(seed, data=ds):
        return ArrayBatches(data, batch_size=3, shuffle=True,
                            generator=torch.Generator().manual_seed(seed))

    assert len(shuffled(0)) == 4
    assert sorted(rows(shuffled(0))) == list(range(10))
    assert list(rows(shuffled(0))) == list(rows(shuffled(0)))
    assert list(rows(shuffled(0))) != list(rows(shuffled(1)))
    assert list(rows(ArrayBatches(ds, batch_size=4))) == list(range(10))
    # A Subset (skorch's validation split) yields only its rows, X and y aligned.
    sub = torch.utils.data.Subset(ds, [7, 2, 5])
    Xb, yb = next(iter(ArrayBatches(sub, batch_size=8)))
    assert yb.tolist() == [7, 2, 5] and Xb[:, 0].tolist() == [14, 4, 10]
    assert sorted(rows(shuffled(0, sub))) == [2, 5, 7]
    # Prediction datasets carry no y.
    Xb, yb = next(iter(ArrayBatches(Dataset(X, None), batch_size=10)))
    assert yb is None and Xb.shape == (10, 2)
    # Anything else goes through torch's DataLoader unchanged.
    other = torch.utils.data.TensorDataset(torch.as_tensor(X), torch.as_tensor(y))
    assert sorted(rows(shuffled(0, other))) == list(range(10))
