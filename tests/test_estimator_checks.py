"""Every public estimator passes scikit-learn's estimator checks."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skedge import AccuracyRegressor, DevicePerformanceRegressor
from skedge.fewshot import KnownDeviceMix
from skedge.preprocessing import (
    DesignEmbedding,
    DesignOneHotEncoder,
    DeviceEmbedding,
    DeviceFeatureEncoder,
    DeviceSignatureEncoder,
)

# Small, fast configurations: the checks fit each estimator dozens of times.
FAST = dict(hidden_layer_sizes=(16,), max_epochs=60, batch_size=32, random_state=0)

ESTIMATORS = [
    AccuracyRegressor(**FAST),
    DevicePerformanceRegressor(**FAST),
    DesignOneHotEncoder(),
    DesignEmbedding(n_components=2),
    DeviceFeatureEncoder(),
    DeviceSignatureEncoder(),
    DeviceEmbedding(n_components=2),
    KnownDeviceMix(),
    KnownDeviceMix(method="kernel"),
]

# No check is expected to fail; the hook stays so an exception would carry its reason.
EXPECTED_FAILED = {}


def _expected_failed(estimator):
    return EXPECTED_FAILED.get(type(estimator).__name__, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed)
def test_sklearn_compatible(estimator, check):
    check(estimator)
