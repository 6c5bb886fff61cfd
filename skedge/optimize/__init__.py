"""Design optimization: the objective, the amortized optimizer and the search fallback."""

from ._objective import Objective
from ._pareto import (
    best_under_constraints,
    hypervolume_2d,
    non_dominated,
    pareto_front,
    plot_pareto_front,
)
from ._search import SearchBaseline

__all__ = ["Objective"]
__all__ += ["SearchBaseline", "pareto_front", "best_under_constraints", "non_dominated",
            "hypervolume_2d", "plot_pareto_front"]
