"""Per-layer cost model shared by the spaces, the simulator and the torch builders.

A design is expanded into a list of :class:`Layer` records (one per conv, fully
connected or pooling layer). MACs, parameters and activation sizes are counted
per image; they are what the FLOPs proxy, the simulator's roofline model and the
MAC-count tests of the built torch modules all read, so they live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Layer", "conv", "linear", "pool", "total"]


@dataclass(frozen=True)
class Layer:
    """Cost record of one layer, per input image.

    Attributes
    ----------
    kind : str
        ``"conv"`` (dense, grouped or depthwise convolution), ``"linear"`` or ``"pool"``.
    block : int
        Index of the searchable block the layer belongs to, -1 for fixed layers.
    cin, cout, kernel, stride, groups, h_in, h_out : int
        Geometry (square feature maps).
    macs : int
        Multiply-accumulates.
    params : int
        Weights (bias and batch-norm parameters are not counted).
    act_in, act_out : int
        Input and output activation elements.
    w_bits, a_bits : int
        Weight and activation bit-width (32 when the design is not quantized).
    """

    kind: str
    block: int
    cin: int
    cout: int
    kernel: int
    stride: int
    groups: int
    h_in: int
    h_out: int
    macs: int
    params: int
    act_in: int
    act_out: int
    w_bits: int = 32
    a_bits: int = 32


def out_size(h, stride):
    """Spatial size after a 'same'-padded layer of odd kernel."""
    return (h - 1) // stride + 1


def conv(cin, cout, kernel, stride, h, *, groups=1, block=-1, w_bits=32, a_bits=32):
    """Record of a 2-D convolution with 'same' padding on an ``h x h`` input."""
    h_out = out_size(h, stride)
    params = cout * (cin // groups) * kernel * kernel
    return Layer(
        "conv", block, cin, cout, kernel, stride, groups, h, h_out,
        macs=params * h_out * h_out, params=params,
        act_in=cin * h * h, act_out=cout * h_out * h_out, w_bits=w_bits, a_bits=a_bits,
    )


def linear(cin, cout, *, block=-1, w_bits=32, a_bits=32):
    """Record of a fully connected layer (or a 1x1 conv on a 1x1 map)."""
    return Layer(
        "linear", block, cin, cout, 1, 1, 1, 1, 1, macs=cin * cout, params=cin * cout,
        act_in=cin, act_out=cout, w_bits=w_bits, a_bits=a_bits,
    )


def pool(c, kernel, stride, h, *, block=-1):
    """Record of a pooling layer; global pooling when ``kernel == h`` and ``stride == h``."""
    h_out = 1 if kernel == h and stride == h else out_size(h, stride)
    return Layer(
        "pool", block, c, c, kernel, stride, c, h, h_out, macs=0, params=0,
        act_in=c * h * h, act_out=c * h_out * h_out,
    )


def total(layers, field="macs"):
    """Sum one field over a list of layers."""
    return int(sum(getattr(layer, field) for layer in layers))
