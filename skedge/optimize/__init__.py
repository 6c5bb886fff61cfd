"""Design optimization: the objective, the amortized optimizer and the search fallback."""

from ._amortized import AmortizedDesignOptimizer
from ._objective import Objective
from ._pareto import (
    best_under_constraints,
    hypervolume_2d,
    non_dominated,
    pareto_front,
    plot_pareto_front,
)
from ._sampling import sample_lambdas, sample_optimizer_inputs
from ._search import SearchBaseline

__all__ = ["Objective"]
__all__ += ["SearchBaseline", "pareto_front", "best_under_constraints", "non_dominated",
            "hypervolume_2d", "plot_pareto_front"]
__all__ += ["AmortizedDesignOptimizer", "sample_optimizer_inputs", "sample_lambdas"]
