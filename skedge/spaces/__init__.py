"""Categorical DNN design spaces: NAS-Bench-201, FBNet and OFA-MobileNetV3."""

from ._base import Choice, DesignSpace
from ._layers import Layer
from .fbnet import FBNetSpace
from .nb201 import NB201Space
from .ofa import OFASpace

__all__ = ["Choice", "DesignSpace", "FBNetSpace", "Layer", "NB201Space", "OFASpace", "get_space"]

_SPACES = {"nb201": NB201Space, "fbnet": FBNetSpace, "ofa": OFASpace}


def get_space(name):
    """Return a design space by name (``"nb201"``, ``"fbnet"``, ``"ofa"``, ``"ofa-quant"``).

    Examples
    --------
    >>> from skedge.spaces import get_space
    >>> get_space("nb201")
    NB201Space()
    >>> get_space("ofa-quant")
    OFASpace(quantize=True)
    """
    if isinstance(name, DesignSpace):
        return name
    key = str(name).lower().replace("_", "-")
    if key in ("ofa-quant", "ofa-q", "ofa-bits"):
        return OFASpace(quantize=True)
    if key in ("nasbench201", "nas-bench-201"):
        key = "nb201"
    if key not in _SPACES:
        raise ValueError(
            f"unknown design space {name!r}; choose one of nb201, fbnet, ofa, ofa-quant."
        )
    return _SPACES[key]()
