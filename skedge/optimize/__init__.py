"""Design optimization: the objective, the amortized optimizer and the search fallback.

One room per concept:

* ``_rows``: optimizer rows ``[device columns..., λ]`` and the one λ range;
* ``_objective``: the predicted objective; ``_fitted``: fitted predictors as inputs;
* ``_relaxation`` / ``_training`` / ``_amortized``: the amortized optimizer;
* ``_engines`` / ``_search``: search engines over one cached fitness, and the
  per-row search estimator;
* ``_sampling``: training rows around known devices; ``_pareto``: fronts and budgets;
* ``_adapted``: designs for a device whose predictors were adapted to measured shots.
"""

from ._adapted import AdaptedObjective, adapted_encoding, design_with_shots
from ._amortized import AmortizedDesignOptimizer
from ._objective import Objective
from ._pareto import (
    best_under_constraints,
    hypervolume_2d,
    non_dominated,
    pareto_front,
    plot_pareto_front,
)
from ._rows import (
    LAMBDA_RANGE,
    check_lambda_range,
    check_lambdas,
    lambda_sweep,
    optimizer_rows,
    split_rows,
)
from ._sampling import sample_lambdas, sample_optimizer_inputs
from ._search import SearchBaseline

__all__ = ["Objective"]
__all__ += [
    "SearchBaseline",
    "best_under_constraints",
    "hypervolume_2d",
    "non_dominated",
    "pareto_front",
    "plot_pareto_front",
]
__all__ += ["AmortizedDesignOptimizer", "sample_lambdas", "sample_optimizer_inputs"]
__all__ += [
    "LAMBDA_RANGE",
    "check_lambda_range",
    "check_lambdas",
    "lambda_sweep",
    "optimizer_rows",
    "split_rows",
]
__all__ += ["AdaptedObjective", "adapted_encoding", "design_with_shots"]
