"""CrossDeviceRegressor: fit, adapt (zero- and few-shot), add_device, persistence, bad input."""

import joblib
import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.base import clone

from skedge import CrossDeviceRegressor, load_model, save_model
from skedge._checks import OutOfRangeWarning
from skedge.adaptation import _HEAD_ALPHAS, AdaptedDevice, _fit_head
from skedge.datasets import make_edge_benchmark, to_pairs
from skedge.devices import DEVICE_FEATURES

FAST = dict(hidden_layer_sizes=(32, 32), max_epochs=4, n_estimators=1, random_state=0)


@pytest.fixture(scope="module")
def bench():
    return make_edge_benchmark("nb201", n_designs=400, n_devices=10, random_state=0)


@pytest.fixture(scope="module")
def split(bench):
    names = list(bench.latency.columns)
    return names[:-2], names[-2:]


@pytest.fixture(scope="module")
def model(bench, split):
    X, y, groups = to_pairs(bench, devices=split[0])
    return CrossDeviceRegressor(space="nb201", **FAST).fit(X, y, groups=groups)


def _shots(bench, device, idx):
    return bench.designs[idx], bench.latency[device].to_numpy()[idx]


def test_fit_stores_the_known_devices(model, bench, split):
    assert model.device_names_ == split[0]
    assert model.known_log_.shape == (len(bench.designs), len(split[0]))
    assert np.isfinite(model.known_log_).all()
    assert model.reference_designs_.shape == (10, 6)
    np.testing.assert_allclose(model.device_features_,
                               bench.devices.loc[split[0], list(DEVICE_FEATURES)].to_numpy())


def test_zero_and_few_shot_predict_a_new_device(model, bench, split):
    new = split[1][0]
    truth = bench.latency[new].to_numpy()
    zero = model.adapt(bench.devices.loc[new], name=new)
    few = model.adapt(bench.devices.loc[new], *_shots(bench, new, bench.reference_idx))
    assert isinstance(zero, AdaptedDevice) and zero.n_shots_ == 0 and few.n_shots_ == 10
    for device in (zero, few):
        pred, std = device.predict(bench.designs, return_std=True)
        assert pred.shape == std.shape == (len(truth),)
        assert (pred > 0).all() and (std > 0).all()
        assert spearmanr(pred, truth).statistic > 0.8
    # The shots set the scale: the few-shot median error is small.
    assert np.median(np.abs(few.predict(bench.designs) / truth - 1)) < 0.25


def test_shots_on_any_designs(model, bench, split):
    """Shots need not be the reference designs, nor ten of them."""
    new = split[1][1]
    truth = bench.latency[new].to_numpy()
    rng = np.random.RandomState(0)
    for k in (1, 3, 40):
        idx = rng.choice(len(truth), size=k, replace=False)
        device = model.adapt(bench.devices.loc[new], *_shots(bench, new, idx))
        assert spearmanr(device.predict(bench.designs), truth).statistic > 0.7, k


def test_a_device_slower_on_every_design_is_ranked_the_same(model, bench, split):
    # The signature network reads the signature's shape, not the device's speed:
    # a device three times slower on every design (or one faster than any known
    # device) is predicted three times slower, in the same order, not extrapolated.
    new = split[1][1]
    signature = bench.latency[new].to_numpy()[bench.reference_idx]
    np.testing.assert_allclose(model._signature_log(bench.designs, 3 * signature)
                               - model._signature_log(bench.designs, signature), np.log(3))
    # All ten reference designs measured, or six (the rest imputed from the known devices).
    for idx in (np.r_[bench.reference_idx, np.arange(0, 400, 25)],
                np.r_[bench.reference_idx[:6], np.arange(0, 400, 40)]):
        designs, y = _shots(bench, new, idx)
        base = model.adapt(None, designs, y).predict(bench.designs)
        for factor in (3.0, 1 / 50):
            scaled = model.adapt(None, designs, factor * y).predict(bench.designs)
            np.testing.assert_allclose(scaled / base, factor, rtol=1e-6)


@pytest.mark.filterwarnings("ignore:device feature peak_gflops")  # checked once below
def test_spec_network_ranks_a_device_beyond_the_known_ones_at_their_edge(model, bench, split):
    # ReLU networks continue linearly past their training devices: zero-shot,
    # the ranking is read from the row clamped into their range, the speed
    # from the row as given.
    known = model.device_features_  # the spec network's training devices (no add_device)
    assert np.isnan(model.spec_range_[:, DEVICE_FEATURES.index("kind")]).all()
    numeric = [i for i, c in enumerate(DEVICE_FEATURES) if c != "kind"]
    np.testing.assert_array_equal(model.spec_range_[:, numeric],
                                  [np.nanmin(known[:, numeric], axis=0),
                                   np.nanmax(known[:, numeric], axis=0)])
    columns = [DEVICE_FEATURES.index(c) for c in ("peak_gflops", "mem_bandwidth_gbs")]
    beyond, at_edge = known[0].copy(), known[0].copy()  # a known device: inside the range
    beyond[columns] = 50 * model.spec_range_[1, columns]
    at_edge[columns] = model.spec_range_[1, columns]
    np.testing.assert_allclose(model._zero_log(bench.designs, beyond),
                               model._zero_log(bench.designs, at_edge))
    grid = model.grid_designs_
    assert model._zero_speed(at_edge, model._zero_log(grid, at_edge)) == 0.0
    assert model._zero_speed(beyond, model._zero_log(grid, beyond)) != 0.0
    with pytest.warns(OutOfRangeWarning, match="peak_gflops"):  # the row is still flagged
        device = model.adapt(beyond)
    # The zero-shot prediction keeps the spec network's mean log latency over the
    # grid for the row as given (its speed), and the clamped row's ranking.
    rows = np.hstack([grid, np.tile(beyond, (len(grid), 1))])
    with pytest.warns(OutOfRangeWarning):
        as_given = np.log(model.zero_shot_net_.predict(rows)).mean()
    pred = device.predict(grid)
    np.testing.assert_allclose(np.log(pred).mean(), as_given, atol=1e-6)
    edge = model.adapt(at_edge).predict(grid)
    assert spearmanr(pred, edge).statistic > 0.999
    np.testing.assert_allclose(device.predict(grid[:7]), pred[:7], rtol=1e-6)  # batch-free
    # A model fitted before the clamp (no spec_range_) extrapolates, as it did.
    old = clone(model).set_params()
    old.__dict__.update(model.__dict__)
    del old.__dict__["spec_range_"]
    assert not np.allclose(old._zero_log(bench.designs, beyond),
                           model._zero_log(bench.designs, beyond))
    assert old._zero_speed(beyond, old._zero_log(grid, beyond)) == 0.0


def test_predictions_do_not_depend_on_the_batch(model, bench, split):
    new = split[1][0]
    device = model.adapt(bench.devices.loc[new], *_shots(bench, new, bench.reference_idx))
    whole = device.predict(bench.designs)
    part = device.predict(bench.designs[:7])
    np.testing.assert_allclose(part, whole[:7], rtol=1e-6)
    zero = model.adapt(bench.devices.loc[new])
    np.testing.assert_allclose(zero.predict(bench.designs[5:9]), zero.predict(bench.designs)[5:9],
                               rtol=1e-6)


def test_designs_off_the_grid_are_predicted(model, bench, split):
    new = split[1][0]
    device = model.adapt(bench.devices.loc[new], *_shots(bench, new, bench.reference_idx))
    unseen = model.space_.sample(20, random_state=1)
    pred = device.predict(unseen)
    assert pred.shape == (20,) and np.isfinite(pred).all() and (pred > 0).all()


def test_predict_on_pair_rows_is_zero_shot(model, bench, split):
    X, y, groups = to_pairs(bench, devices=split[1])
    pred = model.predict(X)
    first = groups == split[1][0]
    zero = model.adapt(bench.devices.loc[split[1][0]]).predict(X[first, :6])
    np.testing.assert_allclose(pred[first], zero, rtol=1e-9)
    assert model.score(X, np.log(y)) is not None


def test_add_device_joins_the_known_devices(bench, split):
    X, y, groups = to_pairs(bench, devices=split[0])
    model = CrossDeviceRegressor(space="nb201", **FAST).fit(X, y, groups=groups)
    new = split[1][0]
    before = model.known_log_.copy()
    idx = np.arange(0, 400, 4)
    model.add_device(new, bench.devices.loc[new], *_shots(bench, new, idx))
    assert model.device_names_[-1] == new and model.known_log_.shape[1] == len(split[0]) + 1
    np.testing.assert_array_equal(model.known_log_[:, :-1], before)
    np.testing.assert_allclose(np.exp(model.known_log_[idx, -1]),
                               bench.latency[new].to_numpy()[idx])
    with pytest.raises(ValueError, match="already known"):
        model.add_device(new, bench.devices.loc[new], *_shots(bench, new, idx))
    with pytest.raises(ValueError, match="no known device 'nope' to replace"):
        model.add_device("nope", bench.devices.loc[new], *_shots(bench, new, idx), replace=True)
    model.add_device(new, bench.devices.loc[new], *_shots(bench, new, idx[:50]), replace=True)
    assert model.device_names_.count(new) == 1


def test_more_shots_do_not_hurt_on_average(model, bench, split):
    rng = np.random.RandomState(1)
    scores = {}
    for k in (10, 100):
        rhos = []
        for new in split[1]:
            truth = bench.latency[new].to_numpy()
            idx = np.r_[bench.reference_idx, rng.choice(
                np.setdiff1d(np.arange(400), bench.reference_idx), k - 10, replace=False)]
            device = model.adapt(bench.devices.loc[new], *_shots(bench, new, idx))
            rest = np.setdiff1d(np.arange(400), idx)
            rhos.append(spearmanr(device.predict(bench.designs[rest]), truth[rest]).statistic)
        scores[k] = np.mean(rhos)
    assert scores[100] >= scores[10] - 0.01, scores


def test_zero_shot_blend_keeps_the_ranking_the_spec_sheet_explains(model, bench, split):
    # With zero_shot_blend=True, shots that are the zero-shot prediction times
    # a constant: the spec sheet explains them exactly (its cross-validated
    # error is nil), the few-shot path (which reads no spec sheet) only
    # approximately, so the inverse-variance weight keeps the zero-shot ranking.
    new = split[1][0]
    features = bench.devices.loc[new]
    zero = model.adapt(features).predict(bench.designs)
    idx = np.arange(0, 400, 40)
    # Off by default: the few-shot prediction is used whole.
    device = model.adapt(features, bench.designs[idx], 3.0 * zero[idx])
    assert device.shot_weight_ == 1.0 and device.weight_cv_rmse_ is None
    model.set_params(zero_shot_blend=True)
    try:
        _check_zero_shot_blend(model, bench, split, features, zero, idx)
    finally:
        model.set_params(zero_shot_blend=False)


def _check_zero_shot_blend(model, bench, split, features, zero, idx):
    device = model.adapt(features, bench.designs[idx], 3.0 * zero[idx])
    assert device.shot_weight_ < 1e-9 and device.weight_cv_rmse_ < 1e-9
    np.testing.assert_allclose(device.predict(bench.designs), 3.0 * zero, rtol=1e-9)
    # Without a spec-sheet row, with one shot, or with every reference design
    # measured (the signature is then real, not imputed) nothing is weighed.
    refs = model.reference_designs_
    on_refs = model.adapt(features).predict(refs)
    for device in (model.adapt(None, bench.designs[idx], 3.0 * zero[idx]),
                   model.adapt(features, bench.designs[idx[:1]], zero[idx[:1]]),
                   model.adapt(features, refs, 3.0 * on_refs)):
        assert device.shot_weight_ == 1.0 and device.weight_cv_rmse_ is None
    # The known devices' own measurements: the few-shot path fits them, the
    # weight is a proper one and the uncertainty stays positive.
    known = split[0][0]
    device = model.adapt(bench.devices.loc[known], *_shots(bench, known, idx))
    assert 0.0 < device.shot_weight_ < 1.0 and device.weight_cv_rmse_ > 0
    assert (device.predict(bench.designs, return_std=True)[1] > 0).all()


def test_shots_on_degenerate_designs_are_left_out(model, bench, split):
    # NB201 cells with no path from input to output read ~0 ms on some phones:
    # their latency says nothing about the operations, so it must not steer
    # the mix and the head that the other shots fit.
    new = split[1][0]
    designs, y = _shots(bench, new, bench.reference_idx)
    dead = np.array([[0, 0, 0, 0, 0, 0], [1, 2, 3, 0, 0, 0]])
    assert model.space_.is_degenerate(dead).all()
    with_dead = model.adapt(bench.devices.loc[new], np.vstack([designs, dead]),
                            np.r_[y, 0.01 * y.min(), 0.02 * y.min()])
    clean = model.adapt(bench.devices.loc[new], designs, y)
    assert with_dead.ignored_shots_.tolist() == [False] * 10 + [True, True]
    assert with_dead.n_shots_ == clean.n_shots_ == 10 and not clean.ignored_shots_.any()
    np.testing.assert_allclose(with_dead.predict(bench.designs), clean.predict(bench.designs))


def test_save_load_and_joblib_round_trip(model, bench, split, tmp_path):
    new = split[1][0]
    shots = _shots(bench, new, bench.reference_idx)
    expected = model.adapt(bench.devices.loc[new], *shots).predict(bench.designs)
    faster = model.device_features_[0] * np.r_[1, [1] * 2, 50, 50, [1] * 7]  # beyond the range
    zero = model.adapt(faster).predict(bench.designs)
    save_model(model, tmp_path / "cross")
    joblib.dump(model, tmp_path / "cross.joblib")
    for loaded in (load_model(tmp_path / "cross"), joblib.load(tmp_path / "cross.joblib")):
        got = loaded.adapt(bench.devices.loc[new], *shots).predict(bench.designs)
        np.testing.assert_allclose(got, expected, rtol=1e-6)
        np.testing.assert_array_equal(loaded.spec_range_, model.spec_range_)
        np.testing.assert_allclose(loaded.adapt(faster).predict(bench.designs), zero, rtol=1e-6)


def test_a_model_saved_before_new_parameters_adapts_as_it_did(model, bench, split, tmp_path,
                                                               monkeypatch):
    # A file written by a release without `part_weights` and `zero_shot_blend`:
    # it loads with the behaviour it was fitted with (fixed weights, the blend
    # on), and get_params / clone work on it.
    def old_state(self):
        return {k: v for k, v in self.__dict__.items()
                if k not in ("part_weights", "zero_shot_blend", "_pos_of")}

    with monkeypatch.context() as m:
        m.setattr(CrossDeviceRegressor, "__getstate__", old_state)
        joblib.dump(model, tmp_path / "old.joblib")
    old = joblib.load(tmp_path / "old.joblib")
    assert old.get_params()["part_weights"] == "fixed" and old.zero_shot_blend
    assert old.shot_head == "ridge"  # saved, so kept; "offset" only where missing
    assert clone(old).get_params() == old.get_params()
    new = split[1][0]
    idx = np.r_[bench.reference_idx[:6], np.arange(0, 400, 40)]
    shots = _shots(bench, new, idx)
    got = old.adapt(bench.devices.loc[new], *shots)
    model.set_params(part_weights="fixed", zero_shot_blend=True)
    try:
        expected = model.adapt(bench.devices.loc[new], *shots)
    finally:
        model.set_params(part_weights="cv", zero_shot_blend=False)
    assert got.part_weights_ is None
    np.testing.assert_allclose(got.predict(bench.designs), expected.predict(bench.designs))


def test_a_network_that_read_the_speed_gets_the_signature_as_it_is(model, bench, split,
                                                                     tmp_path):
    # A model fitted before the signature network read shapes only: its encoder
    # (pickled without `with_speed`) reads the speed, so its network's output is
    # the latency as it is, not relative to the signature's speed.
    old = joblib.load(_dump(model, tmp_path))
    encoder = old.signature_net_.named_steps["features"].named_transformers_["signature"]
    del encoder.__dict__["with_speed"]
    old = joblib.load(_dump(old, tmp_path))
    assert old.signature_net_.named_steps["features"].named_transformers_["signature"].with_speed
    signatures = bench.latency.to_numpy().T[:, bench.reference_idx]
    np.testing.assert_array_equal(old._signature_speed(signatures), np.zeros(len(signatures)))
    # This release's network predicts relative to the log of the geometric mean.
    np.testing.assert_allclose(model._signature_speed(signatures),
                               np.log(signatures).mean(axis=1))


def _dump(model, tmp_path):
    joblib.dump(model, tmp_path / "model.joblib")
    return tmp_path / "model.joblib"


def test_clone_is_unfitted_and_shares_nothing(model):
    twin = clone(model)
    assert not hasattr(twin, "known_log_")
    assert twin.get_params() == {**model.get_params()}


@pytest.mark.parametrize("features, match", [
    ({"kind": 0, "clock_ghz": np.inf}, "'clock_ghz' is infinite|infinite"),
    ({"kind": 0, "warp_speed": 3.0}, "unknown device feature 'warp_speed'"),
    (np.ones(5), "must hold 12 values"),
    # An array row is checked like a named one: physical bounds and kind codes.
    (np.r_[0.0, 1, 32, -300, np.full(8, np.nan)], "peak_gflops"),
    (np.r_[99.0, np.full(11, np.nan)], "kind"),
])
def test_bad_device_rows(model, features, match):
    if isinstance(features, dict):
        features = pd.Series(features)
    with pytest.raises(ValueError, match=match):
        model.adapt(features)


def test_bad_shots(model, bench, split):
    new = split[1][0]
    designs, y = _shots(bench, new, bench.reference_idx)
    with pytest.raises(ValueError, match="positive"):
        model.adapt(None, designs, np.r_[y[:-1], 0.0])
    with pytest.raises(ValueError, match="positive"):
        model.adapt(None, designs, np.r_[y[:-1], -1.0])
    with pytest.raises(ValueError, match="outside"):
        model.adapt(None, np.r_[designs[:-1], [[0, 0, 0, 0, 0, 9]]], y)
    with pytest.raises(ValueError, match="both"):
        model.adapt(None, designs)
    with pytest.raises(ValueError, match="feature row"):
        model.adapt(None)


def test_zero_shot_needs_the_spec_network(bench, split):
    X, y, groups = to_pairs(bench, devices=split[0])
    model = CrossDeviceRegressor(space="nb201", zero_shot=False, **FAST).fit(X, y, groups=groups)
    assert model.zero_shot_net_ is None
    with pytest.raises(ValueError, match="zero_shot=False"):
        model.adapt(bench.devices.loc[split[1][0]])


def test_fit_rejects_bad_tables(bench, split):
    X, y, groups = to_pairs(bench, devices=split[0])
    with pytest.raises(ValueError, match="groups"):
        CrossDeviceRegressor(**FAST).fit(X, y)
    with pytest.raises(ValueError, match="columns"):
        CrossDeviceRegressor(**FAST).fit(X[:, 1:], y, groups=groups)
    with pytest.raises(ValueError, match="non-negative"):
        CrossDeviceRegressor(**FAST).fit(X, -y, groups=groups)
    with pytest.raises(ValueError, match="at least 2 known devices"):
        one = groups == split[0][0]
        CrossDeviceRegressor(**FAST).fit(X[one], y[one], groups=groups[one])


def test_fit_is_idempotent_and_records_the_input_width(bench, split):
    """The properties scikit-learn's fitting checks test, on a valid pair table."""
    X, y, groups = to_pairs(bench, devices=split[0][:4])
    params = dict(FAST, n_train_designs=50)
    first = CrossDeviceRegressor(**params)
    assert first.fit(X, y, groups=groups) is first
    assert first.n_features_in_ == X.shape[1]
    again = clone(first).fit(X, y, groups=groups)
    np.testing.assert_allclose(again.predict(X[:20]), first.predict(X[:20]), rtol=1e-9)
    order = np.random.RandomState(0).permutation(20)
    np.testing.assert_allclose(first.predict(X[:20][order]), first.predict(X[:20])[order],
                               rtol=1e-9)
    with pytest.raises(ValueError, match="features"):
        first.predict(X[:, :-1])


def test_part_weights_lean_on_the_part_the_shots_support(model, bench, split):
    # A new device that is a known device twice as slow: the known devices,
    # mixed to fit the shots, explain it (nearly) exactly, the networks only
    # approximately. The weights measured on held-out shots say so.
    known = split[0][0]
    idx = np.arange(0, 400, 20)
    y = 2.0 * bench.latency[known].to_numpy()
    rest = np.setdiff1d(np.arange(400), idx)
    device = model.adapt(None, bench.designs[idx], y[idx])
    w = device.part_weights_
    assert w.shape == (3,) and np.isclose(w.sum(), 1.0) and (w > 0).all()
    assert w[1] > 0.5 and w[1] == w.max(), w
    model.set_params(part_weights="fixed")
    try:
        fixed = model.adapt(None, bench.designs[idx], y[idx])
    finally:
        model.set_params(part_weights="cv")
    assert fixed.part_weights_ is None

    def rho(dev):
        return spearmanr(dev.predict(bench.designs[rest]), y[rest]).statistic

    assert rho(device) >= rho(fixed), (rho(device), rho(fixed))
    # Below three shots nothing is weighed.
    assert model.adapt(None, bench.designs[idx[:2]], y[idx[:2]]).part_weights_ is None


def test_shot_head_follows_effects_the_shots_can_pay_for(model, bench):
    # The head's columns: one-hot options and log MACs, as on a device.
    rng = np.random.RandomState(0)
    idx = rng.choice(len(bench.designs), 200, replace=False)
    Phi = model._head_features(bench.designs[idx])

    def dof(head, rows):  # effective degrees of freedom: the hat matrix's trace
        sv = np.linalg.svd(Phi[:rows] - Phi[:rows].mean(0), compute_uv=False)
        return 1 + np.sum(sv**2 / (sv**2 + head.alpha))

    # Noise from 12 or 19 shots: never a head that nearly interpolates them
    # (a leave-one-out choice spent 11 degrees of freedom on 12 shots of
    # seed 0), and nothing that moves unseen designs by much.
    for n in (12, 19):
        for seed in range(10):
            noise = np.random.RandomState(seed).normal(scale=0.07, size=n)
            head, rmse = _fit_head(Phi[:n], noise)
            assert dof(head, n) < n - 2, (n, seed, head.alpha)
            assert head.predict(Phi[n:]).std() < 0.3 * 0.07
            assert 0.02 < rmse < 0.2
    # A real effect (one operation on one edge costs 35 % more) over 200
    # shots: followed, and the leave-one-out error falls to the noise level.
    y = 0.3 * Phi[:, 3] + rng.normal(scale=0.03, size=200)
    head, rmse = _fit_head(Phi, y)
    assert head.alpha < 10 and rmse < 0.05, (head.alpha, rmse)
    on, off = Phi[:, 3] == Phi[:, 3].max(), Phi[:, 3] == Phi[:, 3].min()
    gap = head.predict(Phi[on]).mean() - head.predict(Phi[off]).mean()
    assert abs(gap - 0.3) < 0.05, gap
    # Too few shots for any head: the offset, its error the shots' spread.
    head, rmse = _fit_head(Phi[:3], y[:3])
    assert head.alpha == _HEAD_ALPHAS[-1] and np.isfinite(rmse)
