"""Runnable PyTorch networks for designs of the skedge design spaces.

:func:`build_model` turns one design (a row of ``X``) into an untrained
:class:`torch.nn.Module` whose layers are exactly those that the space's
:meth:`~skedge.spaces.DesignSpace.layers` cost model counts, so the analytic
MAC and weight counts (the FLOPs proxy used everywhere else) are the counts of
the network that :mod:`skedge.measure` times. :func:`count_macs_params`
recounts them on a built module with forward hooks.

The weights are random: the modules exist to be timed on a device, not to be
accurate. Latency does not depend on weight values (except for the
data-dependent paths that none of these networks have).
"""

from __future__ import annotations

import warnings

import torch
from sklearn.utils import check_random_state
from torch import nn
from torch.ao.quantization import get_default_qconfig_mapping
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

from .spaces import FBNetSpace, NB201Space, OFASpace, get_space
from .spaces.fbnet import FBNET_BLOCKS, FBNET_OPS, _parse_op
from .spaces.nb201 import NB201_EDGES, NB201_OPS
from .spaces.ofa import (
    BITS,
    EXPANDS,
    KERNELS,
    MAX_DEPTH,
    RESOLUTIONS,
    STAGES,
    make_divisible,
)

__all__ = ["QUANTIZE_MODES", "build_model", "count_macs_params"]

#: Values of ``build_model(..., quantize=)`` besides None.
QUANTIZE_MODES = ("int8",)


# --------------------------------------------------------------------- pieces
def _conv_bn(cin, cout, kernel, stride=1, *, groups=1, act=None):
    layers = [
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act is not None:
        layers.append(_activation(act))
    return nn.Sequential(*layers)


def _activation(name):
    return {"relu": nn.ReLU, "h_swish": nn.Hardswish}[name]()


class _ReLUConvBN(nn.Sequential):
    """NAS-Bench-201's ``ReLUConvBN`` (pre-activation convolution)."""

    def __init__(self, cin, cout, kernel, stride=1):
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
            nn.BatchNorm2d(cout),
        )


class _Zero(nn.Module):
    """NAS-Bench-201's ``none`` op: the benchmark computes ``x * 0``, so do we."""

    def forward(self, x):
        return x.mul(0.0)


def _nb201_op(name, c):
    if name == "none":
        return _Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return _ReLUConvBN(c, c, 1)
    if name == "nor_conv_3x3":
        return _ReLUConvBN(c, c, 3)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"unknown NB201 operation {name!r}; options are {NB201_OPS}.")


class NB201Cell(nn.Module):
    """One NAS-Bench-201 cell: node ``j`` sums ``op_(j,i)(node i)`` over ``i < j``."""

    def __init__(self, ops, c):
        super().__init__()
        self.op_names = tuple(NB201_OPS[o] for o in ops)
        self.edges = nn.ModuleList([_nb201_op(name, c) for name in self.op_names])

    def forward(self, x):
        nodes = [x]
        for target in (1, 2, 3):
            total = None
            for edge, (t, source) in enumerate(NB201_EDGES):
                if t == target:
                    y = self.edges[edge](nodes[source])
                    total = y if total is None else total + y
            nodes.append(total)
        return nodes[-1]


class _ResNetBasicBlock(nn.Module):
    """NAS-Bench-201's reduction block between stages (stride 2, doubles channels)."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv_a = _ReLUConvBN(cin, cout, 3, 2)
        self.conv_b = _ReLUConvBN(cout, cout, 3, 1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(2, stride=2), nn.Conv2d(cin, cout, 1, bias=False)
        )

    def forward(self, x):
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class _Classifier(nn.Module):
    """Global average pooling, then the linear layer(s) of the head."""

    def __init__(self, *layers):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(*layers)

    def forward(self, x):
        return self.head(torch.flatten(self.pool(x), 1))


class _SqueezeExcite(nn.Module):
    """OFA's SE module: pool, 1x1 reduce (bias), ReLU, 1x1 expand (bias), hard sigmoid."""

    def __init__(self, c):
        super().__init__()
        red = make_divisible(c // 4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(c, red, 1)
        self.act = nn.ReLU()
        self.expand = nn.Conv2d(red, c, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x):
        return x * self.gate(self.expand(self.act(self.reduce(self.pool(x)))))


class InvertedResidual(nn.Module):
    """MobileNet inverted residual: 1x1 expand, kxk depthwise, [SE], 1x1 project.

    ``mid == cin`` with ``expand=False`` gives the depthwise-separable block
    (no expansion layer). The identity shortcut is added when the block keeps
    resolution and width. ``w_bits`` / ``a_bits`` are metadata of quantized
    designs (see :func:`build_model`); they do not change the computation.
    """

    def __init__(self, cin, cout, *, kernel, stride, mid, act="relu", se=False, groups=1,
                 expand=True, shuffle=False, block=-1, w_bits=None, a_bits=None):
        super().__init__()
        self.expand = (
            _conv_bn(cin, mid, 1, groups=groups, act=act) if expand else None
        )
        self.shuffle_groups = groups if (shuffle and groups > 1) else 1
        self.depthwise = _conv_bn(mid, mid, kernel, stride, groups=mid, act=act)
        self.se = _SqueezeExcite(mid) if se else None
        self.project = _conv_bn(mid, cout, 1, groups=groups)
        self.use_residual = stride == 1 and cin == cout
        self.block, self.w_bits, self.a_bits = block, w_bits, a_bits

    def forward(self, x):
        y = x if self.expand is None else self.expand(x)
        if self.shuffle_groups > 1:
            # FBNet's grouped 1x1 convolutions are followed by a channel shuffle.
            b, c, h, w = y.shape
            g = self.shuffle_groups
            y = y.reshape(b, g, c // g, h, w).transpose(1, 2).reshape(b, c, h, w)
        y = self.depthwise(y)
        if self.se is not None:
            y = self.se(y)
        y = self.project(y)
        return x + y if self.use_residual else y

    def extra_repr(self):
        bits = f", w_bits={self.w_bits}, a_bits={self.a_bits}" if self.w_bits else ""
        return f"block={self.block}, residual={self.use_residual}{bits}"


class DesignNetwork(nn.Module):
    """A network built from one design: ``stem -> body -> classifier``.

    Attributes
    ----------
    space_name : str
        Name of the design space.
    design : tuple of int
        The (canonical) design the network was built from.
    input_shape : tuple of int
        ``(channels, height, width)`` of one input image.
    block_bits : dict
        ``{block: (w_bits, a_bits)}`` of the searchable blocks of a quantized
        design (``OFASpace(quantize=True)``), empty otherwise. Metadata only.
    """

    def __init__(self, stem, body, classifier, *, space_name, design, input_shape):
        super().__init__()
        self.stem, self.body, self.classifier = stem, body, classifier
        self.space_name = space_name
        self.design = tuple(int(v) for v in design)
        self.input_shape = tuple(input_shape)
        self.block_bits = {
            m.block: (m.w_bits, m.a_bits)
            for m in body.modules()
            if isinstance(m, InvertedResidual) and m.w_bits is not None and m.block >= 0
        }

    def forward(self, x):
        return self.classifier(self.body(self.stem(x)))


# ------------------------------------------------------------------ builders
def _build_nb201(space, x, num_classes):
    c0 = space.stage_channels[0]
    stem = _conv_bn(3, c0, 3)
    body = []
    for stage, c in enumerate(space.stage_channels):
        if stage > 0:
            body.append(_ResNetBasicBlock(space.stage_channels[stage - 1], c))
        body += [NB201Cell(x, c) for _ in range(space.cells_per_stage)]
    c = space.stage_channels[-1]
    # NAS-Bench-201's `lastact` (BN-ReLU) precedes the pooling.
    body += [nn.BatchNorm2d(c), nn.ReLU()]
    classifier = _Classifier(nn.Linear(c, num_classes))
    return stem, nn.Sequential(*body), classifier, (3, space.input_size, space.input_size)


def _build_ofa(space, x, num_classes):
    r = RESOLUTIONS[x[space._R]]
    fixed_bits = 8 if space.quantize else None
    c = space.input_channels
    stem = _conv_bn(3, c, 3, 2, act="h_swish")
    body = [
        InvertedResidual(c, c, kernel=3, stride=1, mid=c, act="relu", expand=False,
                         w_bits=fixed_bits, a_bits=fixed_bits)
    ]
    active = space.active_blocks(x)[0]
    for s, (cout, stride, act, se) in enumerate(STAGES):
        for j in range(MAX_DEPTH):
            b = s * MAX_DEPTH + j
            if not active[b]:
                continue
            bits = {}
            if space.quantize:
                bits = {"w_bits": BITS[x[space._WB][b]], "a_bits": BITS[x[space._AB][b]]}
            body.append(InvertedResidual(
                c, cout, kernel=KERNELS[x[space._KS][b]], stride=stride if j == 0 else 1,
                mid=make_divisible(c * EXPANDS[x[space._E][b]]), act=act, se=se, block=b,
                **bits,
            ))
            c = cout
    body.append(_conv_bn(c, space.final_expand, 1, act="h_swish"))
    classifier = _Classifier(
        nn.Linear(space.final_expand, space.feature_mix, bias=False),
        nn.Hardswish(),
        nn.Linear(space.feature_mix, num_classes),
    )
    return stem, nn.Sequential(*body), classifier, (3, r, r)


def _build_fbnet(space, x, num_classes):
    stem = _conv_bn(3, 16, 3, 2, act="relu")
    body, cin = [], 16
    for b, (op, (cout, stride)) in enumerate(zip(x, FBNET_BLOCKS)):
        name = FBNET_OPS[op]
        if name == "skip":
            if cin != cout or stride != 1:
                body.append(_conv_bn(cin, cout, 1, stride))
        else:
            k, e, g = _parse_op(name)
            body.append(InvertedResidual(
                cin, cout, kernel=k, stride=stride, mid=cin * e, act="relu", groups=g,
                shuffle=True, block=b,
            ))
        cin = cout
    body.append(_conv_bn(cin, 1984, 1, act="relu"))
    classifier = _Classifier(nn.Linear(1984, num_classes))
    size = space.input_size
    return stem, nn.Sequential(*body), classifier, (3, size, size)


_BUILDERS = {NB201Space: (_build_nb201, 10), OFASpace: (_build_ofa, 1000),
             FBNetSpace: (_build_fbnet, 1000)}


def build_model(space, design, *, num_classes=None, quantize=None, random_state=0):
    """Build the PyTorch network of one design.

    Parameters
    ----------
    space : DesignSpace or str
        The design space (or its name, see :func:`skedge.spaces.get_space`).
    design : array-like of shape (n_choices,) or str
        Option indices of one design, or its string form.
    num_classes : int, default=None
        Classifier width; default as in the space's cost model (10 for NB201,
        1000 for OFA and FBNet).
    quantize : {None, "int8"}, default=None
        ``"int8"`` returns a post-training statically quantized copy (PyTorch FX
        graph mode, the backend of ``torch.backends.quantized.engine``: x86/fbgemm
        on Intel/AMD, qnnpack on ARM), calibrated on a few random batches.
        Convolutions, linear layers, additions and most activations then run in
        int8; what the backend cannot quantize stays in float. The 4- and 6-bit
        choices of ``OFASpace(quantize=True)`` are *not* executed as such:
        they are kept as ``w_bits`` / ``a_bits`` attributes on the blocks only,
        since PyTorch's CPU kernels have no sub-8-bit convolutions.
    random_state : int, default=0
        Seed of the random weight initialisation (and of the calibration data).

    Returns
    -------
    model : torch.nn.Module
        In eval mode, with attributes ``space_name``, ``design`` and
        ``input_shape`` (``(3, H, W)`` of one image), ``block_bits``
        (``{block: (w_bits, a_bits)}``, the searched bit-widths as metadata) and
        ``quantized`` (None or ``"int8"``).

    Raises
    ------
    ValueError
        For a space without a network builder, a design outside the space or
        an unknown ``quantize`` mode.

    Examples
    --------
    >>> import torch
    >>> from skedge.models import build_model
    >>> model = build_model("nb201", [3, 1, 0, 2, 4, 1])
    >>> model.input_shape
    (3, 32, 32)
    >>> model.design
    (3, 1, 0, 2, 4, 1)
    >>> from skedge.models import count_macs_params
    >>> count_macs_params(model)[0] > 0
    True
    """
    space = get_space(space)
    if type(space) not in _BUILDERS:
        raise ValueError(
            f"no network builder for {space!r}; supported spaces are "
            f"{sorted(cls.name for cls in _BUILDERS)}."
        )
    if quantize is not None and quantize not in QUANTIZE_MODES:
        raise ValueError(f"quantize must be None or one of {QUANTIZE_MODES}, got {quantize!r}.")
    if isinstance(design, str):
        design = space.from_string(design)
    x = space.validate(design, canonicalize=True)
    if len(x) != 1:
        raise ValueError(f"build_model takes one design, got {len(x)}.")
    x = x[0]
    builder, default_classes = _BUILDERS[type(space)]
    num_classes = default_classes if num_classes is None else int(num_classes)
    seed = int(check_random_state(random_state).randint(2**31 - 1))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        stem, body, classifier, shape = builder(space, x, num_classes)
        model = DesignNetwork(stem, body, classifier, space_name=space.name, design=x,
                              input_shape=shape)
        model.quantized = None
        model.eval()
        if quantize == "int8":
            model = _quantize_int8(model)
    return model


def _quantize_int8(model):
    """Post-training static int8 quantization in FX graph mode, random calibration."""
    engine = torch.backends.quantized.engine
    if engine == "none":
        raise ValueError("this PyTorch build has no quantized CPU engine; int8 is unavailable.")
    example = torch.randn(2, *model.input_shape)
    with warnings.catch_warnings():
        # torch.ao.quantization announces its move to torchao; the API still works.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        prepared = prepare_fx(model, get_default_qconfig_mapping(engine), (example,))
        with torch.inference_mode():
            for _ in range(2):
                prepared(torch.randn_like(example))
        quantized = convert_fx(prepared)
    for attr in ("space_name", "design", "input_shape", "block_bits"):
        setattr(quantized, attr, getattr(model, attr))
    quantized.quantized = "int8"
    quantized.eval()
    return quantized


# ------------------------------------------------------------------ counting
def count_macs_params(model, *, input_shape=None):
    """Count multiply-accumulates and weights of a float model by running it once.

    Forward hooks on every :class:`~torch.nn.Conv2d` and :class:`~torch.nn.Linear`
    add ``weight.numel() * output pixels`` MACs per image and the weight
    elements (no biases, no batch-norm parameters), as
    :class:`~skedge.spaces.Layer` counts them. The counting pass runs on one
    thread (restored afterwards): it needs no speed, and several threads on a
    busy CPU can be many times slower.

    Parameters
    ----------
    model : torch.nn.Module
        A float network, e.g. from :func:`build_model`.
    input_shape : tuple of int, default=None
        ``(C, H, W)`` of one image; default ``model.input_shape``.

    Returns
    -------
    macs, params : int
        Per image.

    Examples
    --------
    >>> from skedge.models import build_model, count_macs_params
    >>> from skedge.spaces import NB201Space
    >>> x = [1, 2, 0, 4, 1, 3]
    >>> count_macs_params(build_model("nb201", x)) == (
    ...     int(NB201Space().macs([x])[0]), int(NB201Space().params([x])[0]))
    True
    """
    shape = tuple(input_shape or model.input_shape)
    counts = {"macs": 0, "params": 0}
    seen = set()

    def hook(module, inputs, output):
        w = module.weight.numel()
        pixels = output.shape[-1] * output.shape[-2] if isinstance(module, nn.Conv2d) else 1
        counts["macs"] += w * pixels
        if id(module) not in seen:
            seen.add(id(module))
            counts["params"] += w

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            model(torch.zeros(1, *shape))
    finally:
        torch.set_num_threads(threads)
        for h in handles:
            h.remove()
    return int(counts["macs"]), int(counts["params"])
