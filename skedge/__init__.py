"""skedge: scale DNN design optimization to thousands of edge devices.

scikit-learn-compatible cross-device performance predictors and an amortized
design optimizer that maps (device features, objective weights) to a design.
"""

from ._version import __version__

__all__ = ["__version__"]
