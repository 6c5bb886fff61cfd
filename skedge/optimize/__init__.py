"""Design optimization: the objective, the amortized optimizer and the search fallback."""

from ._objective import Objective

__all__ = ["Objective"]
