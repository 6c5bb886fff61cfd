"""OFA MobileNetV3: elastic depth, kernel, expansion and resolution, optional bit-widths."""

from __future__ import annotations

import numpy as np

from ._base import Choice, DesignSpace
from ._layers import conv, linear, pool

__all__ = ["OFASpace"]

KERNELS = (3, 5, 7)
EXPANDS = (3, 4, 6)
DEPTHS = (2, 3, 4)
RESOLUTIONS = tuple(range(128, 225, 4))
BITS = (4, 6, 8)
N_STAGES, MAX_DEPTH = 5, 4
N_BLOCKS = N_STAGES * MAX_DEPTH
# OFA-MobileNetV3 (width 1.0): per stage output channels, first stride, activation, squeeze-excite.
STAGES = (
    (24, 2, "relu", False),
    (40, 2, "relu", True),
    (80, 2, "h_swish", False),
    (112, 1, "h_swish", True),
    (160, 2, "h_swish", True),
)


def make_divisible(v, divisor=8):
    """Round a channel count to a multiple of ``divisor`` as MobileNet does."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


class OFASpace(DesignSpace):
    """The Once-for-All MobileNetV3 space, optionally with per-block bit-widths.

    Columns, in order: ``ks0..ks19`` (depthwise kernel 3/5/7 of each of the 20
    blocks), ``e0..e19`` (expand ratio 3/4/6), ``d0..d4`` (active blocks per
    stage, 2/3/4), ``r`` (input resolution 128..224 px in steps of 4) and, with
    ``quantize=True``, ``wb0..wb19`` and ``ab0..ab19`` (weight and activation
    bit-width 4/6/8 of each block, as in APQ mixed-precision quantization).

    Blocks beyond a stage's depth are inactive. Their columns carry no meaning,
    so :meth:`canonicalize` sets them to option 0; every method returns
    canonical designs and :attr:`size` counts distinct networks only.

    Parameters
    ----------
    quantize : bool, default=False
        Add the per-block weight/activation bit-width choices.

    Examples
    --------
    >>> from skedge.spaces import OFASpace
    >>> space = OFASpace()
    >>> space.n_choices
    46
    >>> f"{space.size:.3e}"
    '5.440e+20'
    >>> OFASpace(quantize=True).n_choices
    86
    """

    name = "ofa"
    input_channels = 16
    final_expand = 960
    feature_mix = 1280

    def __init__(self, *, quantize=False):
        self.quantize = bool(quantize)
        choices = (
            [Choice(f"ks{i}", KERNELS) for i in range(N_BLOCKS)]
            + [Choice(f"e{i}", EXPANDS) for i in range(N_BLOCKS)]
            + [Choice(f"d{s}", DEPTHS) for s in range(N_STAGES)]
            + [Choice("r", RESOLUTIONS)]
        )
        if self.quantize:
            choices += [Choice(f"wb{i}", BITS) for i in range(N_BLOCKS)]
            choices += [Choice(f"ab{i}", BITS) for i in range(N_BLOCKS)]
        super().__init__(choices)

    def __repr__(self):
        return "OFASpace(quantize=True)" if self.quantize else "OFASpace()"

    # column slices
    _KS = slice(0, N_BLOCKS)
    _E = slice(N_BLOCKS, 2 * N_BLOCKS)
    _D = slice(2 * N_BLOCKS, 2 * N_BLOCKS + N_STAGES)
    _R = 2 * N_BLOCKS + N_STAGES
    _WB = slice(_R + 1, _R + 1 + N_BLOCKS)
    _AB = slice(_R + 1 + N_BLOCKS, _R + 1 + 2 * N_BLOCKS)

    def active_blocks(self, X):
        """Boolean mask (n_designs, 20) of the blocks each design uses."""
        X = np.asarray(X, dtype=np.int64).reshape(-1, self.n_choices)
        depth = np.asarray(DEPTHS)[X[:, self._D]]  # (n, 5)
        pos = np.tile(np.arange(MAX_DEPTH), N_STAGES)  # block position inside its stage
        return pos[None, :] < np.repeat(depth, MAX_DEPTH, axis=1)

    def mutable_mask(self, X):
        X = np.asarray(X, dtype=np.int64).reshape(-1, self.n_choices)
        mask = np.ones(X.shape, dtype=bool)
        inactive = ~self.active_blocks(X)
        for sl in [self._KS, self._E] + ([self._WB, self._AB] if self.quantize else []):
            mask[:, sl] = ~inactive
        return mask

    def canonicalize(self, X):
        X = np.array(X, dtype=np.int64, copy=True).reshape(-1, self.n_choices)
        inactive = ~self.active_blocks(X)
        cols = [self._KS, self._E] + ([self._WB, self._AB] if self.quantize else [])
        for sl in cols:
            X[:, sl][inactive] = 0
        return X

    @property
    def size(self):
        per_block = len(KERNELS) * len(EXPANDS) * (len(BITS) ** 2 if self.quantize else 1)
        per_stage = sum(per_block**d for d in DEPTHS)
        return per_stage**N_STAGES * len(RESOLUTIONS)

    def to_string(self, x):
        """Compact form: ``r=<px> d=<5 depths> ks=<20 kernels> e=<20 expands>[ wb=.. ab=..]``.

        Blocks beyond a stage's depth are written in their canonical form (as
        :meth:`canonicalize` sets them), so designs that build the same network
        have the same string.
        """
        (d,) = self.to_dicts(self.canonicalize(x))
        parts = [f"r={d['r']}", "d=" + ",".join(str(d[f"d{s}"]) for s in range(N_STAGES))]
        keys = ["ks", "e"] + (["wb", "ab"] if self.quantize else [])
        for key in keys:
            parts.append(f"{key}=" + ",".join(str(d[f"{key}{i}"]) for i in range(N_BLOCKS)))
        return " ".join(parts)

    def from_string(self, s):
        fields = dict(tok.partition("=")[::2] for tok in s.split())
        d = {}
        try:
            d["r"] = int(fields.pop("r"))
            for s_, v in enumerate(fields.pop("d").split(",")):
                d[f"d{s_}"] = int(v)
            for key in ["ks", "e"] + (["wb", "ab"] if self.quantize else []):
                for i, v in enumerate(fields.pop(key).split(",")):
                    d[f"{key}{i}"] = int(v)
        except KeyError as exc:
            raise ValueError(f"OFA design string {s!r} lacks the field {exc.args[0]!r}.") from None
        if fields:
            raise ValueError(f"OFA design string {s!r} has unknown fields {sorted(fields)}.")
        return self.from_dicts([d])[0]

    def layers(self, x, *, num_classes=1000):
        """Per-layer cost records of the network (inactive blocks excluded).

        Each block is a MobileNetV3 inverted residual: 1x1 expand, kxk depthwise
        (stride on the first block of a stage), optional squeeze-excite, 1x1
        project. Bit-widths, when present, are attached to the block's layers;
        the stem, head and classifier stay at 8 bits (as APQ keeps them).
        """
        x = self.validate(x, canonicalize=True)[0]
        r = RESOLUTIONS[x[self._R]]
        fixed_bits = 8 if self.quantize else 32
        out = [conv(3, self.input_channels, 3, 2, r, w_bits=fixed_bits, a_bits=fixed_bits)]
        h = out[-1].h_out
        # First block: depthwise-separable 16 -> 16, k3, no expansion.
        c = self.input_channels
        out += [
            conv(c, c, 3, 1, h, groups=c, w_bits=fixed_bits, a_bits=fixed_bits),
            conv(c, c, 1, 1, h, w_bits=fixed_bits, a_bits=fixed_bits),
        ]
        active = self.active_blocks(x)[0]
        for s, (cout, stride, _act, se) in enumerate(STAGES):
            for j in range(MAX_DEPTH):
                b = s * MAX_DEPTH + j
                if not active[b]:
                    continue
                k = KERNELS[x[self._KS][b]]
                mid = make_divisible(c * EXPANDS[x[self._E][b]])
                st = stride if j == 0 else 1
                bits = {}
                if self.quantize:
                    bits = {"w_bits": BITS[x[self._WB][b]], "a_bits": BITS[x[self._AB][b]]}
                out.append(conv(c, mid, 1, 1, h, block=b, **bits))
                out.append(conv(mid, mid, k, st, h, groups=mid, block=b, **bits))
                h = out[-1].h_out
                if se:
                    red = make_divisible(mid // 4)
                    out += [
                        pool(mid, h, h, h, block=b),
                        linear(mid, red, block=b, **bits),
                        linear(red, mid, block=b, **bits),
                    ]
                out.append(conv(mid, cout, 1, 1, h, block=b, **bits))
                c = cout
        fb = {"w_bits": fixed_bits, "a_bits": fixed_bits}
        out += [
            conv(c, self.final_expand, 1, 1, h, **fb),
            pool(self.final_expand, h, h, h),
            linear(self.final_expand, self.feature_mix, **fb),
            linear(self.feature_mix, num_classes, **fb),
        ]
        return out

    # ------------------------------------------------------------- data IO
    def from_table(self, df):
        """Designs from a table with value columns ``ks*``, ``e*``, ``d*``, ``r`` (OFA/HELP layout)."""
        rows = df[[c.name for c in self.choices]].to_dict("records")
        return self.from_dicts(rows)
