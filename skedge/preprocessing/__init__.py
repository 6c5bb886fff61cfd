"""Encoders of designs and devices that compose in ``Pipeline`` / ``ColumnTransformer``.

* :class:`DesignOneHotEncoder` - one-hot of design indices, categories fixed by the space.
* :class:`DesignEmbedding` - a learned low-dimensional linear embedding of designs.
* :class:`DeviceFeatureEncoder` - spec-sheet features: kind one-hot, log scale,
  imputation of unknowns with a missing indicator, standardization.
* :class:`DeviceSignatureEncoder` - a device described by its latencies on the
  space's reference designs (the few-shot "hardware embedding").
* :class:`DeviceEmbedding` - a learned low-dimensional embedding of device features.

Design-side transformers also implement ``torch_transform(P)``: the same map
applied to *soft* designs (per-choice probabilities laid out like the one-hot),
so fitted pipelines can be differentiated (see :mod:`skedge.differentiable`).

Modules: ``_designs`` (the design encoders), ``_devices`` (the device encoders and
:func:`nearest_devices`).
"""

from ._designs import DesignEmbedding, DesignOneHotEncoder
from ._devices import DeviceEmbedding, DeviceFeatureEncoder, DeviceSignatureEncoder, nearest_devices

__all__ = [
    "DesignEmbedding",
    "DesignOneHotEncoder",
    "DeviceEmbedding",
    "DeviceFeatureEncoder",
    "DeviceSignatureEncoder",
    "nearest_devices",
]

