"""Short readable names: of designs (for tables), of device kinds, of design spaces."""

from __future__ import annotations

import numpy as np

from ..devices import DEVICE_KINDS
from ..spaces import OFASpace, get_space

__all__ = ["design_summary", "kind_name", "space_key"]


def space_key(space):
    """The name :func:`skedge.spaces.get_space` rebuilds ``space`` from.

    Examples
    --------
    >>> from skedge.spaces import get_space
    >>> from skedge.workflow import space_key
    >>> space_key(get_space("ofa-quant")), space_key(get_space("nb201"))
    ('ofa-quant', 'nb201')
    """
    if space.name == "ofa" and getattr(space, "quantize", False):
        return "ofa-quant"
    return space.name


def design_summary(space, designs):
    """Short readable form of designs, for tables (full strings are long for OFA).

    OFA: ``r<resolution> d<depth per stage> <MMACs>M`` plus, with bit-widths,
    the mean weight/activation bits over the used blocks (``w4.8/a6.0b``).
    NAS-Bench-201: the op of each edge grouped by target node (``x`` none,
    ``s`` skip, ``1`` conv 1x1, ``3`` conv 3x3, ``p`` avg pool) and MMACs.

    Examples
    --------
    >>> from skedge.workflow import design_summary
    >>> ops, macs = design_summary("nb201", [[3, 3, 3, 1, 1, 3]])[0].split()
    >>> ops, macs.endswith("M")
    ('3|33|ss3', True)
    """
    space = get_space(space)
    X = space.validate(designs)
    mmacs = space.macs(X) / 1e6
    dicts = space.to_dicts(X)
    out = []
    if isinstance(space, OFASpace):
        active = space.active_blocks(X)
        n_stages = sum(1 for k in dicts[0] if k.startswith("d") and k[1:].isdigit())
        for d, act, m in zip(dicts, active, mmacs):
            depth = "".join(str(d[f"d{s}"]) for s in range(n_stages))
            text = f"r{d['r']} d{depth} {m:.0f}M"
            if space.quantize:
                used = np.flatnonzero(act)
                wb = np.mean([d[f"wb{i}"] for i in used])
                ab = np.mean([d[f"ab{i}"] for i in used])
                text += f" w{wb:.1f}/a{ab:.1f}b"
            out.append(text)
    elif space.name == "nb201":
        abbr = {"none": "x", "skip_connect": "s", "nor_conv_1x1": "1", "nor_conv_3x3": "3",
                "avg_pool_3x3": "p"}
        for d, m in zip(dicts, mmacs):
            ops = [abbr[d[f"e{i}"]] for i in range(6)]
            out.append(f"{ops[0]}|{''.join(ops[1:3])}|{''.join(ops[3:])} {m:.0f}M")
    else:
        for s, m in zip(space.to_strings(X), mmacs):
            out.append((s if len(s) <= 24 else s[:23] + "~") + f" {m:.0f}M")
    return out


def kind_name(code):
    """The name of a device-kind code (:data:`~skedge.devices.DEVICE_KINDS`); "unknown" for NaN."""
    return DEVICE_KINDS[int(code)] if np.isfinite(code) else "unknown"
