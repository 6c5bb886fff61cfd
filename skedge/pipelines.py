"""One-call builders of the standard predictor pipelines of a design space.

The pair table (:func:`skedge.datasets.to_pairs`) lays out every row as::

    [design index columns | DEVICE_FEATURES columns | reference latencies (optional)]

and the pipelines below route each block to its encoder.
"""

from __future__ import annotations

from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from .devices import DEVICE_FEATURES
from .predictors import AccuracyRegressor, DevicePerformanceRegressor
from .preprocessing import DesignOneHotEncoder, DeviceFeatureEncoder, DeviceSignatureEncoder
from .spaces import get_space

__all__ = ["make_accuracy_pipeline", "make_performance_pipeline", "pair_columns"]


def pair_columns(space, *, n_signature=0):
    """Column slices of the pair table: ``(design, device_features, signature)``."""
    n = get_space(space).n_choices
    m = len(DEVICE_FEATURES)
    return slice(0, n), slice(n, n + m), slice(n + m, n + m + n_signature)


def make_accuracy_pipeline(space, **regressor_params):
    """Design one-hot encoder followed by an :class:`~skedge.AccuracyRegressor`.

    Parameters
    ----------
    space : DesignSpace or str
    **regressor_params
        Passed to :class:`~skedge.AccuracyRegressor`.

    Examples
    --------
    >>> from skedge.pipelines import make_accuracy_pipeline
    >>> make_accuracy_pipeline("nb201", max_epochs=5).steps[0][0]
    'design'
    """
    space = get_space(space)
    return Pipeline([
        ("design", DesignOneHotEncoder(space=space)),
        ("regressor", AccuracyRegressor(**regressor_params)),
    ])


def make_performance_pipeline(
    space, *, device_features=True, n_signature=0, **regressor_params
):
    """The standard latency/energy pipeline for pair-table rows of ``space``.

    Parameters
    ----------
    space : DesignSpace or str
    device_features : bool, default=True
        Use the spec-sheet columns (zero-shot: the only device description).
    n_signature : int, default=0
        Number of trailing reference-latency columns (few-shot signature; 10
        for the standard reference designs). Their absence means zero-shot.
    **regressor_params
        Passed to :class:`~skedge.DevicePerformanceRegressor`.

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        Steps ``features`` (a ColumnTransformer) and ``regressor``.

    Examples
    --------
    >>> from skedge.pipelines import make_performance_pipeline
    >>> pipe = make_performance_pipeline("nb201", n_signature=10)
    >>> [name for name, _, _ in pipe.named_steps["features"].transformers]
    ['design', 'device', 'signature']
    """
    space = get_space(space)
    design, device, signature = pair_columns(space, n_signature=n_signature)
    blocks = [("design", DesignOneHotEncoder(space=space), list(range(design.start, design.stop)))]
    if device_features:
        blocks.append(
            ("device", DeviceFeatureEncoder(kind_column=0), list(range(device.start, device.stop)))
        )
    if n_signature:
        blocks.append(
            ("signature", DeviceSignatureEncoder(), list(range(signature.start, signature.stop)))
        )
    if len(blocks) == 1:
        raise ValueError("a performance pipeline needs device_features or n_signature > 0.")
    return Pipeline([
        ("features", ColumnTransformer(blocks, remainder="drop")),
        ("regressor", DevicePerformanceRegressor(**regressor_params)),
    ])
