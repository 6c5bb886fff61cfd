"""Every public estimator of skedge, discovered, through scikit-learn's checks and skedge's own.

The estimators are found by walking the package (like
:func:`sklearn.utils.discovery.all_estimators`), so a new one cannot be
forgotten: :func:`test_every_estimator_is_constructed` fails until it can be
built here. Each is checked at its *default* parameters; an estimator whose
``__init__`` requires arguments (fitted predictors, a design space) gets the
smallest valid ones from :data:`REQUIRED`.

scikit-learn's checks feed estimators random ``X`` of arbitrary widths. The
optimizers answer *optimizer rows* ``[device columns..., λ]`` whose width
their fitted predictors fix, so the checks that fit on such ``X`` cannot
apply to them; those are listed in :data:`EXPECTED_FAILED` with the reason,
and :func:`test_optimizer` runs the same properties (fit returns self,
pickling, idempotent fit, subset and order invariance, ...) on valid rows,
plus skedge's own: a clone keeps the user's fitted predictors intact,
``predict`` is pure, designs are canonical.
"""

import importlib
import inspect
import pickle
import pkgutil

import numpy as np
import pytest
from sklearn.base import BaseEstimator, clone
from sklearn.dummy import DummyRegressor
from sklearn.frozen import FrozenEstimator
from sklearn.utils.estimator_checks import parametrize_with_checks

import skedge
from skedge._torch import torch_threads
from skedge.optimize import (
    AmortizedDesignOptimizer,
    SearchBaseline,
    optimizer_rows,
    sample_optimizer_inputs,
)
from skedge.pipelines import make_accuracy_pipeline, make_performance_pipeline
from skedge.spaces import NB201Space, OFASpace


def all_estimators():
    """``(name, class)`` of every public estimator class defined in skedge, sorted by name."""
    found = {}
    for info in pkgutil.walk_packages(skedge.__path__, "skedge."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if (issubclass(cls, BaseEstimator) and cls.__module__.startswith("skedge")
                    and not name.startswith("_") and not inspect.isabstract(cls)):
                found[name] = cls
    return sorted(found.items())


# ------------------------------------------------------------------ fixtures
def _tiny_predictors(space, n=200):
    """Frozen accuracy and latency predictors of ``space`` (12 device columns), fitted in ~1 s."""
    rng = np.random.RandomState(0)
    X = space.sample(n, random_state=0)
    D = rng.rand(n, 12) + 1
    D[:, 0] = rng.randint(0, 3, n)
    signal = (X == X.max(axis=0)).sum(axis=1)
    acc = make_accuracy_pipeline(space, hidden_layer_sizes=(8,), max_epochs=2,
                                 random_state=0).fit(X, 80 + signal)
    lat = make_performance_pipeline(space, hidden_layer_sizes=(8,), max_epochs=2,
                                    random_state=0).fit(np.hstack([X, D]),
                                                        np.exp(0.2 * signal + D[:, 3]))
    return FrozenEstimator(acc), FrozenEstimator(lat), D


NB201 = NB201Space()
ACC, LAT, DEVICES = _tiny_predictors(NB201)
# 3 devices x 4 λ: exhaustive search scores the space once per distinct device.
ROWS = optimizer_rows(DEVICES[:3], [0.0, 0.01, 0.1, 1.0])


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    # The checks fit tiny networks hundreds of times: extra torch threads only contend
    # (on a busy 2-core machine the default took 6x longer).
    with torch_threads(1):
        yield

#: Required arguments of the estimators that cannot be built without them.
REQUIRED = {
    "AmortizedDesignOptimizer": lambda: {"space": NB201, "accuracy": ACC, "latency": LAT},
    "SearchBaseline": lambda: {"space": NB201, "accuracy": ACC, "latency": LAT},
    # A fitted base that takes any width: FewShotAdapter only recalibrates it.
    "FewShotAdapter": lambda: {"estimator": FrozenEstimator(
        DummyRegressor(strategy="constant", constant=1.0).fit([[0.0]], [1.0]))},
}


def _default_instance(cls):
    return cls(**REQUIRED.get(cls.__name__, dict)())


ESTIMATORS = [_default_instance(cls) for _, cls in all_estimators()]


def test_every_estimator_is_constructed():
    names = {name for name, _ in all_estimators()}
    assert {"AccuracyRegressor", "DevicePerformanceRegressor", "AmortizedDesignOptimizer",
            "SearchBaseline", "FewShotAdapter", "KnownDeviceMix", "CrossDeviceRegressor"} <= names
    assert names == {type(e).__name__ for e in ESTIMATORS}


# ------------------------------------------------------- scikit-learn's checks
#: Checks that fit on scikit-learn's generated X and y.
_FITTING_CHECKS = (
    "check_fit_score_takes_y", "check_estimators_overwrite_params",
    "check_dont_overwrite_parameters", "check_estimators_fit_returns_self",
    "check_readonly_memmap_input", "check_n_features_in_after_fitting",
    "check_positive_only_tag_during_fit", "check_dtype_object", "check_pipeline_consistency",
    "check_estimators_pickle", "check_f_contiguous_array_estimator",
    "check_methods_sample_order_invariance", "check_methods_subset_invariance",
    "check_dict_unchanged", "check_fit_idempotent", "check_fit_check_is_fitted",
    "check_n_features_in", "check_fit2d_predict1d",
)
# The optimizers: sklearn's X is never a table of optimizer rows ([device columns..., λ],
# a width fixed by the fitted predictors), so fit refuses it. test_optimizer checks the
# same properties on valid rows.
_ROW_WIDTH = "X of arbitrary width is not a table of optimizer rows (checked in test_optimizer)"
_OPTIMIZER_EXPECTED = dict.fromkeys(
    _FITTING_CHECKS + ("check_estimators_dtypes", "check_fit2d_1sample", "check_fit2d_1feature"),
    _ROW_WIDTH)
# FewShotAdapter only recalibrates a fitted base (here a constant): it cannot be trained to
# fit arbitrary targets.
_FEWSHOT_EXPECTED = {"check_regressors_train": "a constant base cannot be recalibrated to fit "
                                                "arbitrary targets"}
# CrossDeviceRegressor: X is a pair table [design option indices | 12 device features] of
# its design space, and fit needs the device name of each row (groups) to keep the table of
# known devices. tests/test_crossdevice.py checks the same properties on pair tables.
_PAIR_TABLE = "X of arbitrary width is not a pair table, and fit needs groups (test_crossdevice)"
_CROSS_DEVICE_EXPECTED = dict.fromkeys(
    _FITTING_CHECKS + ("check_estimators_dtypes", "check_fit2d_1sample", "check_fit2d_1feature",
                       "check_regressors_train", "check_regressor_data_not_an_array",
                       "check_regressors_no_decision_function", "check_supervised_y_2d",
                       "check_regressors_int"),
    _PAIR_TABLE)
EXPECTED_FAILED = {
    "CrossDeviceRegressor": _CROSS_DEVICE_EXPECTED,
    "AmortizedDesignOptimizer": _OPTIMIZER_EXPECTED,
    "SearchBaseline": _OPTIMIZER_EXPECTED,
    "FewShotAdapter": _FEWSHOT_EXPECTED,
}


def _expected_failed(estimator):
    return EXPECTED_FAILED.get(type(estimator).__name__, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed)
def test_sklearn_compatible(estimator, check):
    check(estimator)


# ------------------------------------------------------- skedge's own checks
def _predictor_state(frozen):
    """Every parameter and fitted weight of a frozen pipeline, for before/after comparison."""
    reg = frozen.estimator.steps[-1][1]
    weights = [p.detach().clone() for net in reg.estimators_ for p in net.module_.parameters()]
    return frozen.estimator.get_params(deep=True), weights


def _same_state(a, b):
    (pa, wa), (pb, wb) = a, b
    return (pa.keys() == pb.keys() and all(pa[k] is pb[k] or pa[k] == pb[k] for k in pa)
            and all(np.array_equal(x.numpy(), y.numpy()) for x, y in zip(wa, wb)))


def check_clone_keeps_predictors_intact(opt):
    before = _predictor_state(opt.accuracy)
    twin = clone(opt)
    # A grid search sets nested parameters on clones: never on the user's predictor.
    with pytest.raises(ValueError):
        twin.set_params(accuracy__regressor__max_epochs=1)
    twin.fit(ROWS)
    assert _same_state(before, _predictor_state(opt.accuracy))


def check_fit_returns_self_and_is_idempotent(opt):
    first = clone(opt)
    assert first.fit(ROWS) is first
    assert first.n_features_in_ == ROWS.shape[1]
    np.testing.assert_array_equal(first.predict(ROWS), clone(opt).fit(ROWS).predict(ROWS))


def check_predict_is_pure(opt):
    fitted = clone(opt).fit(ROWS)
    state = pickle.dumps(fitted)
    acc, lat = _predictor_state(opt.accuracy), _predictor_state(opt.latency)
    designs = fitted.predict(ROWS)
    np.testing.assert_array_equal(fitted.predict(ROWS), designs)
    assert pickle.dumps(fitted) == state
    assert _same_state(acc, _predictor_state(opt.accuracy))
    assert _same_state(lat, _predictor_state(opt.latency))
    # Row by row, in any order and subset: the same designs.
    order = np.random.RandomState(0).permutation(len(ROWS))
    np.testing.assert_array_equal(fitted.predict(ROWS[order]), designs[order])
    np.testing.assert_array_equal(fitted.predict(ROWS[:5]), designs[:5])
    # And after a pickle round trip.
    np.testing.assert_array_equal(pickle.loads(state).predict(ROWS), designs)


def check_designs_canonical(opt):
    space = OFASpace()
    acc, lat, devices = _tiny_predictors(space, n=100)
    rows = sample_optimizer_inputs(devices[:5], 8, random_state=0)
    ofa = clone(opt).set_params(space=space, accuracy=acc, latency=lat)
    if isinstance(ofa, AmortizedDesignOptimizer):
        ofa.set_params(n_steps=5)
    designs = ofa.fit(rows).predict(rows)
    assert designs.dtype == np.int64 and designs.shape == (len(rows), space.n_choices)
    np.testing.assert_array_equal(space.canonicalize(designs), designs)


def check_rows_are_validated(opt):
    fitted = clone(opt).fit(ROWS)
    with pytest.raises(ValueError, match="columns"):
        fitted.predict(ROWS[:, :-1])
    with pytest.raises(ValueError, match="λ"):
        fitted.predict(np.c_[ROWS[:, :-1], -np.ones(len(ROWS))])


# Small budgets: these checks fit each optimizer a few times.
OPTIMIZERS = [
    AmortizedDesignOptimizer(**REQUIRED["AmortizedDesignOptimizer"](), n_steps=10,
                             n_augment=64, hidden_layer_sizes=(8,), n_estimators=2,
                             distill=128, random_state=0),
    # "auto": exhaustive on NB201 (rows are independent and exact), evolution on OFA.
    # Evolution seeds row i with the i-th seed drawn from random_state, so its designs
    # depend on a row's position in X and the order/subset part of check_predict_is_pure
    # would not hold for it.
    SearchBaseline(**REQUIRED["SearchBaseline"](), population_size=10, n_cycles=20,
                   sample_size=3, n_offspring=5, random_state=0),
]
OPTIMIZER_CHECKS = [check_clone_keeps_predictors_intact, check_fit_returns_self_and_is_idempotent,
                    check_predict_is_pure, check_designs_canonical, check_rows_are_validated]


@pytest.mark.parametrize("check", OPTIMIZER_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("opt", OPTIMIZERS, ids=lambda o: type(o).__name__)
def test_optimizer(opt, check):
    check(opt)
