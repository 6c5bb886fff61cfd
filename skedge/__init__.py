"""skedge: scale DNN design optimization to thousands of edge devices.

scikit-learn-compatible cross-device performance predictors and an amortized
design optimizer that maps (device features, objective weights) to a design.
"""

from ._version import __version__
from .crossdevice import CrossDeviceRegressor
from .optimize import AmortizedDesignOptimizer, SearchBaseline
from .persistence import load_model, save_model
from .pipelines import make_accuracy_pipeline, make_performance_pipeline
from .predictors import AccuracyRegressor, DevicePerformanceRegressor
from .spaces import FBNetSpace, NB201Space, OFASpace, get_space

__all__ = [
    "AccuracyRegressor",
    "AmortizedDesignOptimizer",
    "CrossDeviceRegressor",
    "DevicePerformanceRegressor",
    "FBNetSpace",
    "NB201Space",
    "OFASpace",
    "SearchBaseline",
    "__version__",
    "get_space",
    "load_model",
    "make_accuracy_pipeline",
    "make_performance_pipeline",
    "save_model",
]
