"""Evaluation harnesses: the predictors and the optimizer on devices they never saw.

:func:`evaluate_predictors` (``skedge evaluate-predictors``) scores
cross-device latency prediction on held-out hardware against baselines;
:func:`evaluate_optimizer` (``skedge evaluate-optimizer``) measures the
amortized optimizer's regret, Pareto hypervolume and speed. Every model is
trained on non-test devices only. The measured results, and the settings they
were measured with, are in the benchmarks page of the documentation.

Modules: ``_predictors`` (:func:`evaluate_predictors` and its folds),
``_optimizer`` (:func:`evaluate_optimizer`), ``_shots`` (few-shot designs of
the optimizer evaluation).
"""

from ._optimizer import DEFAULT_TEST_DEVICES, evaluate_optimizer
from ._predictors import (
    evaluate_predictors,
    fit_fold_model,
    format_table,
    granted_shots,
    load_benchmark,
    score_fold,
    signature_designs,
)

__all__ = [
    "DEFAULT_TEST_DEVICES",
    "evaluate_optimizer",
    "evaluate_predictors",
    "fit_fold_model",
    "format_table",
    "granted_shots",
    "load_benchmark",
    "score_fold",
    "signature_designs",
]
