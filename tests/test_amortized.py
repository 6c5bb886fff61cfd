"""AmortizedDesignOptimizer and its training-input sampler."""

import pickle
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV

from skedge._torch import MLP
from skedge.datasets import make_edge_benchmark, to_pairs
from skedge.devices import DEVICE_FEATURES
from skedge.optimize import (
    AmortizedDesignOptimizer,
    Objective,
    sample_lambdas,
    sample_optimizer_inputs,
)
from skedge.optimize._relaxation import blocks_of
from skedge.pipelines import make_accuracy_pipeline, make_performance_pipeline
from skedge.spaces import FBNetSpace, NB201Space, get_space

# Tiny networks, and the two greedy rounds before distillation these thresholds were set
# with: with four (the default) a 32-unit student trained 400 steps missed the teachers at
# λ = 1 on one device (objective -0.07 against -0.51); the default is measured at full
# size by `skedge evaluate-optimizer` (docs/benchmarks.rst).
FAST = {"hidden_layer_sizes": (32,), "n_steps": 400, "batch_size": 256, "n_augment": 512,
        "n_estimators": 2, "distill": 1024, "distill_refine": 2}


@pytest.fixture(scope="module")
def setup():
    """Tiny NB201 predictors on the simulator: 6 training devices, 2 held out."""
    bench = make_edge_benchmark(space="nb201", n_designs=600, n_devices=8, random_state=0)
    space = bench.space
    ok = np.isfinite(bench.accuracy)
    # A linear accuracy target: the simulator's accuracy is smooth in the design, and the
    # regret thresholds below were set on this fixture (the default log-error target
    # is measured on real data by benchmarks/bench_accuracy_target.py).
    # One network in batches of 256, the fixture's predictor before the defaults moved
    # to three networks in batches of 128.
    acc = make_accuracy_pipeline(space, hidden_layer_sizes=(32,), max_epochs=40,
                                 target_transform="none", batch_size=256, n_estimators=1,
                                 random_state=0).fit(bench.designs[ok], bench.accuracy[ok])
    train = list(bench.devices.index[:6])
    X, y, _ = to_pairs(bench, devices=train)
    lat = make_performance_pipeline(space, hidden_layer_sizes=(32,), max_epochs=15,
                                    random_state=0).fit(X, y)
    D = bench.devices.to_numpy(np.float64)
    X_train = sample_optimizer_inputs(D[:6], 300, random_state=0)
    lam = np.array([0.0, 0.003, 0.03, 0.3, 1.0])
    X_test = np.array([np.r_[d, v] for d in D[6:] for v in lam])
    opt = AmortizedDesignOptimizer(space=space, accuracy=acc, latency=lat, random_state=0,
                                   **FAST).fit(X_train)
    return {"space": space, "acc": acc, "lat": lat, "D": D, "X_train": X_train, "X_test": X_test, "opt": opt,
                "obj": Objective(space, acc, lat)}


def _frozen_clone(opt):
    """clone(opt) with its fitted predictors kept (wrapped in FrozenEstimator)."""
    return clone(clone(opt).set_params(accuracy=FrozenEstimator(opt.accuracy),
                                       latency=FrozenEstimator(opt.latency)))


def _state(est):
    reg = est.steps[-1][1]
    return [{k: v.clone() for k, v in net.module_.state_dict().items()}
            for net in reg.estimators_]


# ------------------------------------------------------------------ sampler
def test_sampler_keeps_kind_nan_and_ranges():
    D = np.array([
        [0, 1, 32, 80, 30, 4, 2.5, 2, 4, np.nan, 10, 2018],
        [0, 1, 8, 200, 60, 8, 3.0, 4, 8, 5.0, 7, 2021],
        [8, 1, 32, 11000, 480, 3584, 1.5, 3, 11, 250, 16, 2017],
    ])
    X = sample_optimizer_inputs(D, 4000, lambda_range=(1e-2, 0.5), lambda_zero_fraction=0.2,
                                random_state=0)
    assert X.shape == (4000, 13)
    assert set(X[:, 0]) <= {0.0, 8.0}
    # Discrete columns come from a parent of the same kind, never averaged or jittered.
    assert set(X[X[:, 0] == 8, 2]) == {32.0}
    assert set(X[X[:, 0] == 0, 2]) <= {32.0, 8.0}
    assert set(X[:, 1]) == {1.0}
    # Positive specs stay within the kind's range up to the jitter.
    gpu = X[X[:, 0] == 8]
    assert np.all(np.abs(np.log(gpu[:, 3] / 11000)) < 0.6)
    phone = X[X[:, 0] == 0, 3]
    assert phone.min() > 80 * 0.6 and phone.max() < 200 / 0.6
    assert len(np.unique(phone)) > 100  # new devices, not copies
    # NaN survives only where the dominant parent was unknown; no NaN elsewhere.
    assert np.isnan(X[:, 9]).any() and not np.isnan(np.delete(X, 9, axis=1)).any()
    lam = X[:, -1]
    assert 0.15 < (lam == 0).mean() < 0.25
    assert lam[lam > 0].min() >= 1e-2 and lam.max() <= 0.5
    # log-uniform: the median of the non-zero λ is the geometric midpoint.
    assert abs(np.log(np.median(lam[lam > 0])) - np.log(np.sqrt(1e-2 * 0.5))) < 0.2
    again = sample_optimizer_inputs(D, 4000, lambda_range=(1e-2, 0.5),
                                    lambda_zero_fraction=0.2, random_state=0)
    np.testing.assert_array_equal(X, again)


def test_sampler_dataframe_and_options():
    D = pd.DataFrame(np.tile([[1, 1, 16, 500, 40, 512, 0.8, 1, 6, 4, 7, 2020]], (2, 1)),
                     columns=list(DEVICE_FEATURES), index=["a", "b"])
    X = sample_optimizer_inputs(D, 50, n_lambdas=2, jitter=0.0, mix_fraction=0.0,
                                random_state=1)
    assert X.shape == (50, 14)
    np.testing.assert_array_equal(X[:, :12], np.tile(D.to_numpy(), (25, 1))[:50])
    assert sample_lambdas(7, 2, random_state=0).shape == (7, 2)


@pytest.mark.parametrize("kwargs, match", [
    ({"lambda_range": (0.0, 1.0)}, "lambda_range"),
    ({"lambda_range": (1.0, 0.1)}, "lambda_range"),
    ({"jitter": -1.0}, "jitter"),
    ({"mix_fraction": 2.0}, "mix_fraction"),
    ({"n_lambdas": 3}, "n_lambdas"),
    ({"kind_column": 99}, "kind_column"),
])
def test_sampler_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sample_optimizer_inputs(np.ones((2, 12)), 5, **kwargs)


def test_sampler_bad_devices():
    with pytest.raises(ValueError, match="non-empty"):
        sample_optimizer_inputs(np.ones((0, 12)), 5)
    with pytest.raises(ValueError, match="infinite"):
        sample_optimizer_inputs(np.full((2, 12), np.inf), 5)
    with pytest.raises(ValueError, match="non-negative integer"):
        sample_optimizer_inputs(np.ones((2, 12)), -1)


# ---------------------------------------------------------------- optimizer
def test_fit_predict_shapes_and_valid_designs(setup):
    opt, space = setup["opt"], setup["space"]
    P = opt.predict(setup["X_test"])
    assert P.shape == (len(setup["X_test"]), space.n_choices) and P.dtype == np.int64
    np.testing.assert_array_equal(space.validate(P, canonicalize=True), P)
    assert opt.n_features_in_ == 13 and opt.n_device_columns_ == 12
    assert len(opt.networks_) == 1 and opt.loss_curves_[0].shape == (40,)
    # Training lowers the objective: the last minibatches beat the first ones.
    assert opt.loss_curves_[0][-3:].mean() < opt.loss_curves_[0][0]
    prob = opt.design_probabilities(setup["X_test"][:4])
    sums = np.add.reduceat(prob, space.option_offsets, axis=1)
    np.testing.assert_allclose(sums, 1.0, rtol=1e-5)
    argmax = [[blk.argmax() for blk in np.split(p, space.option_offsets[1:])] for p in prob]
    np.testing.assert_array_equal(argmax, P[:4])
    assert opt.predict(setup["X_test"][:0]).shape == (0, space.n_choices)


def test_regret_small_against_exhaustive_search(setup):
    opt, obj, X = setup["opt"], setup["obj"], setup["X_test"]
    E = setup["space"].enumerate()
    f_pred = obj.value(opt.predict(X), X)
    D, lam = obj.split(X)
    acc = obj.accuracy.predict(E)
    lo, span, typical = [], [], []
    for i in range(len(X)):
        lat = obj.latency.predict(np.hstack([E, np.repeat(D[i:i + 1], len(E), axis=0)]))
        f = -acc / 100 + lam[i, 0] * lat / obj.references(D[i:i + 1])[0, 0]
        lo.append(f.min())
        span.append(f.max() - f.min())
        typical.append((np.median(f) - f.min()) / (f.max() - f.min()))
    lo, span = np.array(lo), np.array(span)
    regret = (f_pred - lo) / span
    # One small network settles in one basin of a multimodal objective (which one
    # depends on the seed; see the class Notes), far better than a typical design...
    assert np.median(regret) < 0.3 * np.median(typical), (regret, np.median(typical))
    assert np.median(regret) < 0.08 and np.mean(regret < 0.15) >= 0.8, regret
    # ...and an ensemble with one greedy round, the configuration for quality, gets close.
    ens = _frozen_clone(opt).set_params(n_estimators=3, refine=1).fit(setup["X_train"])
    regret_ens = (obj.value(ens.predict(X), X) - lo) / span
    assert np.median(regret_ens) < 0.03 and np.mean(regret_ens < 0.1) >= 0.9, regret_ens
    assert np.median(regret_ens) <= np.median(regret)


def test_larger_latency_weight_gives_faster_designs(setup):
    opt, obj, D = setup["opt"], setup["obj"], setup["D"]
    lat = {}
    for v in (0.0, 1.0):
        X = np.hstack([D, np.full((len(D), 1), v)])
        lat[v] = obj.metrics(opt.predict(X), D)["latency"] / obj.references(D)[:, 0]
    assert lat[1.0].mean() < lat[0.0].mean()
    assert np.mean(lat[1.0] <= lat[0.0]) >= 0.75


def test_deterministic_and_global_rng_untouched(setup):
    torch_state, np_state = torch.random.get_rng_state(), np.random.get_state()[1].copy()
    kw = dict(space=setup["space"], accuracy=setup["acc"], latency=setup["lat"],
              random_state=3, **{**FAST, "n_steps": 30})
    a = AmortizedDesignOptimizer(**kw).fit(setup["X_train"])
    b = AmortizedDesignOptimizer(**kw).fit(setup["X_train"])
    np.testing.assert_array_equal(a.predict(setup["X_test"]), b.predict(setup["X_test"]))
    np.testing.assert_array_equal(a.loss_curves_[0], b.loss_curves_[0])
    for p, q in zip(a.networks_[0].parameters(), b.networks_[0].parameters()):
        assert torch.equal(p, q)
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)


def test_predictor_weights_unchanged_by_fit(setup):
    before = _state(setup["acc"]), _state(setup["lat"])
    AmortizedDesignOptimizer(space=setup["space"], accuracy=setup["acc"], latency=setup["lat"],
                             random_state=0, **{**FAST, "n_steps": 30}).fit(setup["X_train"])
    after = _state(setup["acc"]), _state(setup["lat"])
    for b_list, a_list in zip(before, after):
        for b, a in zip(b_list, a_list):
            assert all(torch.equal(b[k], a[k]) for k in b)
    for est in (setup["acc"], setup["lat"]):
        for net in est.steps[-1][1].estimators_:
            assert all(p.requires_grad for p in net.module_.parameters())


@pytest.mark.parametrize("relaxation", ["st", "softmax", "gumbel-st", "reinforce"])
def test_other_relaxations_train(setup, relaxation):
    opt = AmortizedDesignOptimizer(space=setup["space"], accuracy=setup["acc"],
                                   latency=setup["lat"], relaxation=relaxation, random_state=0,
                                   **{**FAST, "n_steps": 40}).fit(setup["X_train"])
    curve = opt.loss_curves_[0]
    assert curve[-1] < curve[0]
    assert opt.predict(setup["X_test"][:3]).shape == (3, 6)


def test_n_estimators_and_refine_keep_the_best(setup):
    obj, X = setup["obj"], setup["X_test"]
    opt = AmortizedDesignOptimizer(space=setup["space"], accuracy=setup["acc"],
                                   latency=setup["lat"], random_state=0,
                                   **{**FAST, "n_steps": 60, "n_estimators": 3,
                                      "distill": 0}).fit(setup["X_train"])
    cands = opt.predict_network(X)
    assert cands.shape == (3, len(X), 6)
    values = np.stack([obj.value(c, X) for c in cands])
    best = obj.value(opt.predict(X), X)
    np.testing.assert_allclose(best, values.min(axis=0), rtol=1e-6, atol=1e-9)
    refined = obj.value(opt.set_params(refine=2).predict(X), X)
    assert np.all(refined <= best + 1e-9)
    # Refinement ends in a design no single-choice change improves (when it converged).
    opt.set_params(refine=20)
    x = opt.predict(X[:1])
    nb = setup["space"].neighbours(x)
    assert obj.value(x, X[:1])[0] <= obj.value(nb, np.repeat(X[:1], len(nb), 0)).min() + 1e-9


def test_score_is_negative_mean_objective(setup):
    opt, obj, X = setup["opt"], setup["obj"], setup["X_test"]
    assert opt.score(X) == pytest.approx(-obj.value(opt.predict(X), X).mean())


def test_joblib_round_trip(setup, tmp_path):
    opt, X = setup["opt"], setup["X_test"]
    path = tmp_path / "opt.joblib"
    joblib.dump(opt, path)
    loaded = joblib.load(path)
    np.testing.assert_array_equal(loaded.predict(X), opt.predict(X))
    assert loaded.score(X) == pytest.approx(opt.score(X))
    assert len(pickle.dumps(opt)) < 3 * len(pickle.dumps((setup["acc"], setup["lat"])))


def test_clone_follows_sklearn_with_frozen_predictors(setup):
    opt = setup["opt"]
    params = opt.get_params()
    assert params["hidden_layer_sizes"] == (32,) and params["relaxation"] == "gumbel-softmax"
    # Given as they are, the predictors are cloned (unfitted) with the optimizer,
    # so the clone shares nothing with the original; fit says how to keep them.
    twin = clone(opt)
    assert twin.accuracy is not opt.accuracy and twin.latency is not opt.latency
    assert not hasattr(twin, "networks_")
    assert twin.get_params(deep=False).keys() == opt.get_params(deep=False).keys()
    with pytest.raises(NotFittedError):
        twin.predict(setup["X_test"])
    with pytest.raises(ValueError, match="FrozenEstimator"):
        twin.fit(setup["X_train"][:20])
    # Wrapped in FrozenEstimator they stay fitted, and a clone cannot reconfigure them.
    twin = _frozen_clone(opt)
    with pytest.raises(ValueError):
        twin.set_params(accuracy__regressor__max_epochs=1)
    assert setup["acc"].steps[-1][1].max_epochs == 40
    np.testing.assert_array_equal(twin.fit(setup["X_train"]).predict(setup["X_test"]),
                                  opt.predict(setup["X_test"]))


def test_grid_search_over_width(setup):
    opt = AmortizedDesignOptimizer(space=setup["space"], accuracy=FrozenEstimator(setup["acc"]),
                                   latency=FrozenEstimator(setup["lat"]), random_state=0,
                                   **{**FAST, "n_steps": 20, "n_augment": 64})
    search = GridSearchCV(opt, {"hidden_layer_sizes": [(8,), (16,)]}, cv=2)
    search.fit(setup["X_train"][:60])
    assert search.best_params_["hidden_layer_sizes"] in [(8,), (16,)]
    assert np.all(search.cv_results_["mean_test_score"] > 0)  # -f > 0 : accuracy dominates
    assert search.best_estimator_.predict(setup["X_test"][:2]).shape == (2, 6)


def test_nan_device_columns(setup):
    X = setup["X_test"][:3].copy()
    X[:, 9] = np.nan  # the spec-feature pipeline imputes unknown specs
    assert setup["opt"].predict(X).shape == (3, 6)


def test_energy_objective(setup):
    bench = make_edge_benchmark(space="nb201", n_designs=200, n_devices=3, random_state=1)
    Xp, y, _ = to_pairs(bench, target="energy")
    en = make_performance_pipeline(bench.space, hidden_layer_sizes=(8,), max_epochs=3,
                                   random_state=0).fit(Xp, y)
    X = sample_optimizer_inputs(setup["D"][:6], 100, n_lambdas=2, random_state=0)
    opt = AmortizedDesignOptimizer(space=setup["space"], accuracy=setup["acc"],
                                   latency=setup["lat"], energy=en, random_state=0,
                                   **{**FAST, "n_steps": 20}).fit(X)
    assert opt.n_features_in_ == 14
    assert opt.predict(X[:4]).shape == (4, 6)
    with pytest.raises(ValueError, match="lambda_latency, lambda_energy"):
        opt.predict(X[:4, :13])


@pytest.mark.parametrize("edit, match", [
    (lambda X: X[:, :-1], "columns"),
    (lambda X: np.c_[X[:, :-1], -X[:, -1:] - 1], "λ"),
    (lambda X: np.c_[X[:, :-1], np.full((len(X), 1), np.inf)], "λ"),
    (lambda X: np.c_[X[:, :-1], np.full((len(X), 1), np.nan)], "λ"),
])
def test_bad_rows(setup, edit, match):
    X = edit(setup["X_test"][:3].copy())
    with pytest.raises(ValueError, match=match):
        setup["opt"].predict(X)
    with pytest.raises(ValueError, match=match):
        _frozen_clone(setup["opt"]).set_params(n_steps=1).fit(X)


def test_bad_predictors_and_parameters(setup):
    space, acc, lat, X = setup["space"], setup["acc"], setup["lat"], setup["X_train"][:20]
    unfitted = make_accuracy_pipeline(space)
    with pytest.raises(ValueError, match="accuracy predictor is not fitted"):
        AmortizedDesignOptimizer(space=space, accuracy=unfitted, latency=lat).fit(X)
    fb = FBNetSpace()
    Xf = fb.sample(50, 0)
    acc_fb = make_accuracy_pipeline(fb, hidden_layer_sizes=(4,), max_epochs=1,
                                    random_state=0).fit(Xf, np.ones(50))
    with pytest.raises(ValueError, match="FBNetSpace"):
        AmortizedDesignOptimizer(space=space, accuracy=acc_fb, latency=lat).fit(X)
    with pytest.raises(ValueError, match="tau_end"):
        AmortizedDesignOptimizer(space=space, accuracy=acc, latency=lat, tau_start=0.1,
                                 tau_end=1.0).fit(X)
    with pytest.raises(ValueError, match="lambda_range"):
        AmortizedDesignOptimizer(space=space, accuracy=acc, latency=lat,
                                 lambda_range=(0, 1)).fit(X)
    with pytest.raises(ValueError, match="relaxation"):
        AmortizedDesignOptimizer(space=space, accuracy=acc, latency=lat,
                                 relaxation="magic").fit(X)
    with pytest.raises(NotFittedError):
        AmortizedDesignOptimizer(space=space, accuracy=acc, latency=lat).predict(X)


def test_nan_rejected_when_latency_predictor_cannot_impute(setup):
    space = NB201Space()
    designs = space.sample(100, 0)
    sig = np.random.RandomState(0).rand(100, 3) + 1
    lat = make_performance_pipeline(space, device_features=False, n_signature=3,
                                    hidden_layer_sizes=(4,), max_epochs=1, random_state=0)
    lat.fit(np.hstack([designs, np.zeros((100, 12)), sig]), sig.sum(1))
    X = np.c_[np.ones((4, 15)), np.full(4, 0.1)]
    X[0, 13] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        AmortizedDesignOptimizer(space=space, accuracy=setup["acc"], latency=lat,
                                 n_steps=1).fit(X)


def test_relaxed_designs_are_canonical_in_ofa():
    from skedge.optimize._relaxation import _Blocks
    from skedge.spaces import OFASpace

    space = OFASpace(quantize=True)
    blocks = _Blocks(space)
    assert len(blocks.controlled) == 40 and not blocks.pinned.any()  # 2 optional blocks x 4 x 5
    with torch.random.fork_rng():
        torch.manual_seed(0)
        logits = (3 * torch.randn(64, space.n_one_hot)).requires_grad_()
        weights = torch.rand(space.n_one_hot)
        hard = blocks.relax(logits, "gumbel-st", 0.5)
    x = np.stack([[blk.argmax() for blk in np.split(p, space.option_offsets[1:])]
                  for p in hard.detach().numpy()])
    np.testing.assert_array_equal(x, space.canonicalize(x))
    np.testing.assert_allclose(hard.detach().numpy().sum(1), space.n_choices, rtol=1e-5)
    # The soft, expected form: an optional block counts by the probability that it exists.
    soft = blocks.unpad(blocks.expected(torch.softmax(blocks.pad(logits), -1)))
    np.testing.assert_allclose(np.add.reduceat(soft.detach().numpy(), space.option_offsets, 1),
                               1.0, rtol=1e-5)
    (soft * weights).sum().backward()
    depth = space.option_offsets[40]  # d0 steers the optional blocks of stage 0
    assert logits.grad[:, depth:depth + 3].abs().sum() > 0
    # Stage 0 at depth 2 (certain): its blocks 2 and 3 show the canonical option only.
    sure = torch.zeros(1, space.n_one_hot)
    sure[0, depth] = 50.0
    grid = blocks.expected(torch.softmax(blocks.pad(sure), -1))[0]
    np.testing.assert_allclose(grid[2, :3].numpy(), [1, 0, 0], atol=1e-6)  # ks2
    np.testing.assert_allclose(grid[1, :3].numpy(), [1 / 3] * 3, atol=1e-6)  # ks1 always on


def test_ofa_fit_predict_smoke():
    from skedge.spaces import OFASpace

    space = OFASpace(quantize=True)
    X = space.sample(200, 0)
    acc = make_accuracy_pipeline(space, hidden_layer_sizes=(8,), max_epochs=2,
                                 random_state=0).fit(X, 70 + (X[:, :20] == 2).sum(1) / 4)
    D = np.random.RandomState(0).rand(200, 12) + 1
    D[:, 0] = 3
    lat = make_performance_pipeline(space, hidden_layer_sizes=(8,), max_epochs=2,
                                    random_state=0).fit(np.hstack([X, D]),
                                                        np.exp(D[:, 3] + X[:, 40] / 3))
    rows = sample_optimizer_inputs(D[:10], 50, random_state=0)
    opt = AmortizedDesignOptimizer(space=space, accuracy=acc, latency=lat, n_steps=10,
                                   n_augment=50, hidden_layer_sizes=(16,), refine=1,
                                   random_state=0).fit(rows)
    P = opt.predict(rows[:5])
    np.testing.assert_array_equal(space.validate(P, canonicalize=True), P)
    # Ordinal choices (every OFA choice is numeric and ordered) get one shift output each.
    assert opt.networks_[0].n_out == space.n_one_hot + space.n_choices
    prob = opt.design_probabilities(rows[:3])
    np.testing.assert_allclose(np.add.reduceat(prob, space.option_offsets, axis=1), 1.0, rtol=1e-5)


def test_ordinal_shift_moves_mass_along_the_options():
    from skedge.optimize._relaxation import _Blocks, _is_ordinal
    from skedge.spaces import OFASpace

    assert _is_ordinal((3, 5, 7)) and _is_ordinal((224, 192, 160))
    assert not _is_ordinal(("none", "skip_connect", "conv_1x1")) and not _is_ordinal((3, 5))
    assert not _is_ordinal((3, 7, 5)) and not _is_ordinal((True, False, True))
    assert _Blocks(NB201Space()).n_ordinal == 0  # operations are nominal
    space = OFASpace(quantize=True)
    blocks = _Blocks(space)
    r = list(space.choice_names).index("r")
    out = torch.zeros(2, blocks.n_outputs(True))
    out[0, space.n_one_hot + r] = 20.0  # a large positive shift: the last option wins
    out[1, space.n_one_hot + r] = -20.0  # negative: the first
    assert blocks.argmax(out)[:, r].tolist() == [space.n_options[r] - 1, 0]
    assert blocks.argmax(out[:, : space.n_one_hot]).shape == (2, space.n_choices)


# ------------------------------------------------------------------ λ contract
def test_lambda_outside_trained_range_warns_once_in_predict(setup):
    opt, X = setup["opt"], setup["X_test"][:2].copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.predict(X)  # 0 and values inside lambda_range: no warning
    X[:, -1] = [0.5, 10.0]
    with pytest.warns(UserWarning, match=r"λ=10 .*\[0\.001, 1\]"):
        designs = opt.predict(X)
    assert designs.shape == (2, 6)


def test_one_lambda_range_everywhere(setup):
    from skedge.optimize import LAMBDA_RANGE, lambda_sweep, pareto_front, sample_lambdas
    from skedge.optimize._rows import DEFAULT_LAMBDAS

    lo, hi = LAMBDA_RANGE
    assert AmortizedDesignOptimizer(space="nb201", accuracy=None,
                                    latency=None).lambda_range == LAMBDA_RANGE
    lam = sample_lambdas(500, zero_fraction=0.0, random_state=0)
    assert lam.min() >= lo and lam.max() <= hi
    assert DEFAULT_LAMBDAS.max() == hi and DEFAULT_LAMBDAS[DEFAULT_LAMBDAS > 0].min() == lo
    np.testing.assert_array_equal(lambda_sweep(), DEFAULT_LAMBDAS)
    # The default sweep of a front stays inside the range the optimizer was trained on.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        front = pareto_front(setup["opt"], setup["D"][6])
    assert front["lambda_latency"].max() <= hi


def test_distilled_network_learns_the_refined_ensemble(setup):
    """One student network replaces the teachers and reproduces most of their designs."""
    opt = setup["opt"]
    assert len(opt.networks_) == 1 and len(opt.loss_curves_) == 2
    assert 0.5 < opt.distill_agreement_ <= 1.0
    curve = opt.distill_curve_
    assert curve[-5:].mean() < curve[:5].mean()
    # The student's designs come close to the teachers' per-row best, refined (tiny nets here).
    teachers = _frozen_clone(opt).set_params(distill=0, refine=opt.distill_refine).fit(
        setup["X_train"])
    X, obj = setup["X_test"], setup["obj"]
    student = obj.value(opt.predict(X), X)
    teacher = obj.value(teachers.predict(X), X)
    assert np.mean(student) <= np.mean(teacher) + 0.03


def test_distillation_rounds_relabel_with_the_refined_student(setup):
    """Each round after the first replaces some labels by the refined student's designs."""
    opt = setup["opt"]
    assert opt.distill_rounds == 2 and len(opt.distill_relabelled_) == 1
    assert 0.0 < opt.distill_relabelled_[0] <= 1.0
    one = _frozen_clone(opt).set_params(distill_rounds=1, n_steps=50).fit(setup["X_train"])
    assert one.distill_relabelled_ == [] and len(one.networks_) == 1
    with pytest.raises(ValueError, match="distill_rounds"):
        _frozen_clone(opt).set_params(distill_rounds=0).fit(setup["X_train"])


@pytest.mark.parametrize("space_name", ["nb201", "fbnet", "ofa-quant"])
@pytest.mark.parametrize("shift", [True, False])
def test_folded_network_proposes_the_same_designs(space_name, shift):
    # predict folds the ordinal shifts into the last layer and groups the outputs
    # by option count: the argmax must be that of the network as trained.
    blocks = blocks_of(get_space(space_name))
    torch.manual_seed(0)
    net = MLP(8, blocks.n_outputs(shift), hidden=(16,)).eval()
    F = torch.randn(2000, 8)
    with torch.no_grad():
        expected = blocks.argmax(net(F))
        folded = blocks.argmax_folded(blocks.fold(net)(F))
    torch.testing.assert_close(folded, expected, rtol=0, atol=0)


def test_finetune_improves_the_students_own_designs(setup):
    """The straight-through steps after distillation lower the predicted objective of the
    designs predict returns; finetune=0 (the default) leaves the distilled student as it was."""
    opt = setup["opt"]
    assert opt.finetune == 0.0 and opt.finetune_curves_ == []
    tuned = _frozen_clone(opt).set_params(finetune=0.5).fit(setup["X_train"])
    assert len(tuned.finetune_curves_) == 1
    assert len(tuned.finetune_curves_[0]) == round(0.5 * opt.n_steps) // 10
    assert tuned.distill_agreement_ == opt.distill_agreement_  # the same student before
    obj = setup["obj"]
    for X in (setup["X_train"], setup["X_test"]):  # known devices, then held-out ones
        fine, student = obj.value(tuned.predict(X), X), obj.value(opt.predict(X), X)
        assert np.mean(fine) < np.mean(student)
        assert np.mean(fine < student) > np.mean(fine > student)
    with pytest.raises(ValueError, match="finetune"):
        _frozen_clone(opt).set_params(finetune=-1).fit(setup["X_train"])
