"""NAS-Bench-201: a cell of 4 nodes, 6 edges, 5 candidate operations per edge."""

from __future__ import annotations

import re

import numpy as np

from ._base import Choice, DesignSpace
from ._layers import conv, linear, pool, total

__all__ = ["NB201Space"]

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# (target node, source node) of each edge, in the order of the official string.
NB201_EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
_TOKEN = re.compile(r"^([a-z_0-9]+)~(\d+)$")
_EDGE_COSTS = {}  # field -> (cost of the all-none cell, per-edge per-op extra cost)


class NB201Space(DesignSpace):
    """The NAS-Bench-201 cell space: 6 edges x 5 operations = 15,625 designs.

    Column ``e{i}`` is the operation on edge ``i``; edges are ordered
    1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2 as in the official architecture string
    ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``. Operation indices are
    0 none, 1 skip_connect, 2 nor_conv_1x1, 3 nor_conv_3x3, 4 avg_pool_3x3.

    The official benchmark index (``arch_idx``) is a fixed permutation that only
    the benchmark's own table defines; it lives with the data, in
    :func:`skedge.datasets.nb201_arch_idx` and :func:`skedge.datasets.nb201_designs`
    (which read ``nb201/archs.csv`` from the data home).

    Examples
    --------
    >>> from skedge.spaces import NB201Space
    >>> space = NB201Space()
    >>> space.size
    15625
    >>> space.to_string([3, 3, 3, 3, 3, 3])
    '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|'
    >>> space.from_string('|skip_connect~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|').tolist()
    [1, 0, 0, 0, 0, 1]
    """

    name = "nb201"
    ops = NB201_OPS
    edges = NB201_EDGES

    def __init__(self):
        super().__init__([Choice(f"e{i}", NB201_OPS) for i in range(len(NB201_EDGES))])

    def to_string(self, x):
        x = self.validate(x)[0]
        nodes, i = [], 0
        for target in (1, 2, 3):
            toks = []
            for source in range(target):
                toks.append(f"{NB201_OPS[x[i]]}~{source}")
                i += 1
            nodes.append("|" + "|".join(toks) + "|")
        return "+".join(nodes)

    def from_string(self, s):
        nodes = s.strip().split("+")
        if len(nodes) != 3:
            raise ValueError(f"an NB201 arch string has 3 nodes separated by '+': {s!r}.")
        row = []
        for target, node in enumerate(nodes, start=1):
            toks = [t for t in node.strip("|").split("|")]
            if len(toks) != target:
                raise ValueError(f"node {target} of {s!r} must have {target} inputs.")
            for source, tok in enumerate(toks):
                m = _TOKEN.match(tok)
                if not m or int(m.group(2)) != source or m.group(1) not in NB201_OPS:
                    raise ValueError(
                        f"bad edge {tok!r} in {s!r}: expected '<op>~{source}' with op in "
                        f"{NB201_OPS}."
                    )
                row.append(NB201_OPS.index(m.group(1)))
        return np.array(row, dtype=np.int64)

    #: Channels of the three stages of the CIFAR skeleton, cells per stage, input size.
    stage_channels = (16, 32, 64)
    cells_per_stage = 5
    input_size = 32

    def layers(self, x, *, num_classes=10):
        """Per-layer cost records of the full CIFAR network built around cell ``x``.

        The skeleton is NAS-Bench-201's: a 3x3 stem conv to 16 channels, three
        stages of 5 cells (16, 32, 64 channels; 32, 16, 8 pixels) joined by
        ResNet basic reduction blocks, global pooling and a linear classifier.
        Every edge operation is counted, as the benchmark's network computes
        all of them.
        """
        x = self.validate(x)[0]
        out = [conv(3, self.stage_channels[0], 3, 1, self.input_size)]
        h = self.input_size
        for stage, c in enumerate(self.stage_channels):
            if stage > 0:
                c_prev = self.stage_channels[stage - 1]
                out += [
                    conv(c_prev, c, 3, 2, h),
                    conv(c, c, 3, 1, h // 2),
                    pool(c_prev, 2, 2, h),
                    conv(c_prev, c, 1, 1, h // 2),
                ]
                h //= 2
            for _ in range(self.cells_per_stage):
                for edge, op in enumerate(x):
                    name = NB201_OPS[op]
                    if name == "nor_conv_3x3":
                        out.append(conv(c, c, 3, 1, h, block=edge))
                    elif name == "nor_conv_1x1":
                        out.append(conv(c, c, 1, 1, h, block=edge))
                    elif name == "avg_pool_3x3":
                        out.append(pool(c, 3, 1, h, block=edge))
        c = self.stage_channels[-1]
        out += [pool(c, h, h, h), linear(c, num_classes)]
        return out

    def _layer_totals(self, X, field):
        # A cell's cost is a sum over its edges and every edge's cost depends on its
        # own operation only, so totals are a lookup: cost(all none) + per-edge deltas.
        X = self.validate(X)
        table = _EDGE_COSTS.get(field)
        if table is None:
            base = total(self.layers(np.zeros(6, dtype=np.int64)), field)
            table = np.zeros((6, len(NB201_OPS)), dtype=np.int64)
            for edge in range(6):
                for op in range(1, len(NB201_OPS)):
                    x = np.zeros(6, dtype=np.int64)
                    x[edge] = op
                    table[edge, op] = total(self.layers(x), field) - base
            table = _EDGE_COSTS[field] = (base, table)
        base, deltas = table
        return base + deltas[np.arange(6), X].sum(axis=1)

    def is_degenerate(self, X):
        """True for cells with no path from the input node to the output node.

        Such cells compute a constant, so their measured latency is ~0 on some
        devices and their accuracy is chance level.
        """
        X = self.validate(X)
        alive = np.zeros((len(X), 4), dtype=bool)
        alive[:, 0] = True
        for i, (target, source) in enumerate(NB201_EDGES):
            alive[:, target] |= alive[:, source] & (X[:, i] != 0)
        return ~alive[:, 3]
