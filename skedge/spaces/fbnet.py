"""FBNet: 22 searchable blocks with 9 candidate blocks each (the HELP encoding)."""

from __future__ import annotations

import numpy as np

from ._base import Choice, DesignSpace
from ._layers import conv, linear, pool

__all__ = ["FBNetSpace"]

FBNET_OPS = (
    "k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip",
)
# (output channels, stride) of the 22 searchable blocks of the FBNet macro skeleton.
FBNET_BLOCKS = (
    [(16, 1)]
    + [(24, 2)] + [(24, 1)] * 3
    + [(32, 2)] + [(32, 1)] * 3
    + [(64, 2)] + [(64, 1)] * 3
    + [(112, 1)] * 4
    + [(184, 2)] + [(184, 1)] * 3
    + [(352, 1)]
)


def _parse_op(name):
    """Kernel, expansion and groups of an FBNet op name such as ``k5_e1_g2``."""
    parts = name.split("_")
    groups = int(parts[2][1:]) if len(parts) > 2 else 1
    return int(parts[0][1:]), int(parts[1][1:]), groups


class FBNetSpace(DesignSpace):
    """The FBNet space: 22 blocks x 9 operations (about 3.3e21 designs).

    Column ``b{i}`` selects the block type of searchable block ``i``:
    ``k{kernel}_e{expansion}[_g2]`` inverted-residual blocks (``g2``: grouped
    1x1 convolutions) or ``skip``. The option order and the string form (ops
    separated by spaces) are those of HELP's FBNet data.

    Examples
    --------
    >>> from skedge.spaces import FBNetSpace
    >>> space = FBNetSpace()
    >>> space.n_choices, int(space.n_options[0])
    (22, 9)
    >>> space.to_string([8] * 22).split()[:3]
    ['skip', 'skip', 'skip']
    """

    name = "fbnet"
    ops = FBNET_OPS
    input_size = 224

    def __init__(self):
        super().__init__([Choice(f"b{i}", FBNET_OPS) for i in range(len(FBNET_BLOCKS))])

    def to_string(self, x):
        return " ".join(FBNET_OPS[i] for i in self.validate(x)[0])

    def from_string(self, s):
        toks = s.split()
        if len(toks) != self.n_choices:
            raise ValueError(f"an FBNet string has {self.n_choices} ops, got {len(toks)}: {s!r}.")
        bad = [t for t in toks if t not in FBNET_OPS]
        if bad:
            raise ValueError(f"unknown FBNet op {bad[0]!r}; options are {FBNET_OPS}.")
        return np.array([FBNET_OPS.index(t) for t in toks], dtype=np.int64)

    def layers(self, x, *, num_classes=1000):
        """Per-layer cost records of the FBNet network (224 px ImageNet skeleton).

        A ``skip`` block costs nothing when shapes match and is a strided 1x1
        convolution when the block changes width or resolution.
        """
        x = self.validate(x)[0]
        h = self.input_size
        out = [conv(3, 16, 3, 2, h)]
        h = out[-1].h_out
        cin = 16
        for b, (op, (cout, stride)) in enumerate(zip(x, FBNET_BLOCKS)):
            name = FBNET_OPS[op]
            if name == "skip":
                if cin != cout or stride != 1:
                    out.append(conv(cin, cout, 1, stride, h, block=b))
            else:
                k, e, g = _parse_op(name)
                mid = cin * e
                out.append(conv(cin, mid, 1, 1, h, groups=g, block=b))
                out.append(conv(mid, mid, k, stride, h, groups=mid, block=b))
                out.append(conv(mid, cout, 1, 1, out[-1].h_out, groups=g, block=b))
            h = (h - 1) // stride + 1
            cin = cout
        out += [conv(cin, 1984, 1, 1, h), pool(1984, h, h, h), linear(1984, num_classes)]
        return out
