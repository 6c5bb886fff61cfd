"""The simulator's cost model: per-layer latency, energy and accuracy of designs on devices.

Latency is a per-layer roofline with device-specific efficiency per layer type,
bit-width support, launch overheads and cache effects; energy adds static power,
per-MAC and per-byte costs; accuracy is a saturating capacity model minus a
quantization penalty. The device factors come from
:mod:`skedge.datasets._device_population`.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import sparse
from scipy.special import expit, logit

from ..spaces import OFASpace

# Layer type codes of the per-layer arrays: dense, pointwise (1x1), depthwise, linear, pool.
_DENSE, _POINTWISE, _DEPTHWISE, _LINEAR, _POOL = range(5)


# ---------------------------------------------------------------- design costs
_LAYER_FIELDS = ("type", "macs", "params", "act_in", "act_out", "kernel", "stride", "w_bits",
                 "a_bits")


def _layer_table(space, X):
    """Distinct layers of the designs and how often each design uses each.

    Returns ``(L, C)``: ``L`` maps each field of :data:`_LAYER_FIELDS` to a float
    array over the distinct layers, ``C`` is a sparse (n_designs, n_layers) count
    matrix. Designs of one space share most of their layers, so every per-layer
    quantity is computed once per distinct layer and summed per design with
    ``C @ values``.
    """
    index, rows, cols, counts = {}, [], [], []
    for i, x in enumerate(X):
        try:
            layers = space.layers(x)
        except NotImplementedError as exc:
            raise ValueError(
                f"space {space!r} has no layer model (layers()); cannot simulate it."
            ) from exc
        for layer in layers:
            cols.append(index.setdefault(_layer_row(layer), len(index)))
        counts.append(len(layers))
    table = np.array(list(index), dtype=np.float64).reshape(-1, len(_LAYER_FIELDS))
    L = {k: table[:, j] for j, k in enumerate(_LAYER_FIELDS)}
    rows = np.repeat(np.arange(len(X)), counts)
    C = sparse.csr_matrix(
        (np.ones(len(cols)), (rows, np.asarray(cols, dtype=np.int64))),
        shape=(len(X), len(index)),
    )
    return L, C


def _layer_row(layer):
    if layer.kind == "pool":
        t = _POOL
    elif layer.kind == "linear":
        t = _LINEAR
    elif layer.groups > 1 and layer.groups == layer.cin:
        t = _DEPTHWISE
    elif layer.kernel == 1:
        t = _POINTWISE
    else:
        t = _DENSE
    return (t, layer.macs, layer.params, layer.act_in, layer.act_out, layer.kernel,
            layer.stride, layer.w_bits, layer.a_bits)


# ------------------------------------------------------------ latency / energy
def _simulate_device(L, h):
    """Noise-free per-layer time (ms) and dynamic energy (mJ) on one device."""
    batch = h["batch_size"]
    ltype = L["type"].astype(np.int64)
    macs = L["macs"] * batch
    w_bits, a_bits = L["w_bits"], L["a_bits"]
    req = np.maximum(w_bits, a_bits)
    quant = req < 16
    native = h["native_bits"]
    peak8 = h["peak_native"] * h["int8_gain"]
    if h["scalable"]:
        wb, ab = np.minimum(w_bits, 16), np.minimum(a_bits, 16)
        peak = peak8 * 64.0 / (wb * ab)
        w_bytes, a_bytes = wb / 8, ab / 8
        dequant = np.zeros_like(quant)
    else:
        exec_bits = np.full(req.shape, native)
        if h["int8"]:
            exec_bits = np.where(quant, 8.0, exec_bits)
        if h["int4"]:
            exec_bits = np.where(req <= 4, 4.0, exec_bits)
        # A quantized layer with no integer path runs at the native precision,
        # after dequantizing its weights and activations.
        dequant = quant & (exec_bits > 8)
        peak = np.where(exec_bits <= 4, peak8 * h["int4_gain"],
                        np.where(exec_bits <= 8, peak8, h["peak_native"]))
        w_bytes = a_bytes = exec_bits / 8
    eff = np.array([h["eff_dense"], h["eff_pointwise"], h["eff_depthwise"], h["eff_linear"],
                    1.0])[ltype]
    eff = eff * np.where((ltype == _DENSE) & (L["kernel"] == 3) & (L["stride"] == 1),
                         h["winograd"], 1.0)
    kernel = np.maximum(L["kernel"], 1)
    eff = eff * np.where(ltype == _DEPTHWISE, (3.0 / kernel) ** h["dw_kernel_exp"], 1.0)
    parallel = L["act_out"] * batch
    util = parallel / (parallel + h["par_half"])
    # CPUs: a batch-1 layer rarely keeps every core busy (``core_scaling`` is the
    # useful share of each extra core); GPUs and accelerators use ``util`` instead.
    cores = h["units"] if h["core_scaling"] < 1 else 1.0
    multicore = (1 + (cores - 1) * h["core_scaling"]) / cores
    t_compute = 2.0 * macs / (peak * 1e9 * eff * util * h["sustain"] * multicore) * 1e3
    nbytes = L["params"] * w_bytes + (L["act_in"] + L["act_out"]) * batch * a_bytes
    # Share of the traffic served on chip: all of it when the layer's working set
    # fits in half the on-chip memory, falling off smoothly beyond.
    hit = np.clip(h["on_chip_mb"] * 0.5e6 / np.maximum(nbytes, 1.0), 0.0, 1.0)
    bw = h["bw_gbs"] * 1e9 * h["bw_eff"]
    t_memory = nbytes * (hit / (bw * h["cache_mult"]) + (1 - hit) / bw) * 1e3
    t_dequant = np.where(
        dequant, (L["params"] + L["act_in"] * batch) * (native / 8) / bw * 1e3, 0.0
    )
    t_layer = np.maximum(t_compute, t_memory) + t_dequant + h["layer_ms"]
    # Dynamic energy: per MAC at the execution precision (TDP-derived: the chip
    # draws its dynamic power at peak) plus DRAM traffic (on-chip bytes cost a tenth).
    p_dynamic = h["tdp_w"] * (1 - h["static_frac"])
    e_layer = (macs * 2000.0 * p_dynamic / peak
               + nbytes * ((1 - hit) + 0.1 * hit) * h["pj_per_byte"]) * 1e-9
    return t_layer, e_layer


def _simulate(L, C, params):
    """Noise-free latency (ms) and energy (mJ), shape (n_designs, n_devices)."""
    n_dev = len(params)
    t_layers = np.empty((len(L["macs"]), n_dev))
    e_layers = np.empty_like(t_layers)
    records = params.to_dict("records")
    for j, h in enumerate(records):
        t_layers[:, j], e_layers[:, j] = _simulate_device(L, h)
    fixed = np.array([h["fixed_ms"] for h in records])
    p_static = np.array([h["tdp_w"] * h["static_frac"] for h in records])
    latency = np.asarray(C @ t_layers) + fixed
    energy = np.asarray(C @ e_layers) + p_static * latency
    return latency, energy


# ------------------------------------------------------------------ accuracy
# (asymptote floor, asymptote ceiling, accuracy at the 2nd and 98th capacity percentile
# of random designs), in percent.
_ACCURACY_SCALE = {
    "ofa": (55.0, 80.5, 71.5, 78.5),  # OFA MobileNetV3 subnets, ImageNet top-1
    "fbnet": (55.0, 77.5, 70.5, 75.5),  # FBNet space, ImageNet top-1
    "nb201": (30.0, 94.6, 76.0, 93.8),  # NAS-Bench-201, CIFAR-10
}
_ACCURACY_NOISE_SCALE = {"nb201": 1.5}


def _capacity(L, C):
    """Log-capacity score: compute, parameters, depth and receptive field."""
    macs, params = C @ L["macs"], C @ L["params"]
    depth = C @ (L["params"] > 0).astype(np.float64)
    spatial = ((L["kernel"] > 1) & (L["type"] != _POOL)).astype(np.float64)
    kernel = (C @ (spatial * L["kernel"])) / np.maximum(C @ spatial, 1.0)
    return (np.log1p(macs) + 0.5 * np.log1p(params) + 0.5 * np.log1p(depth)
            + 0.15 * np.maximum(kernel - 3, 0))


def _quantization_penalty(L, C):
    """Accuracy drop (points) from low bit-widths, weighted by each layer's share of the work."""
    # Depthwise layers are the most quantization-sensitive part of MobileNets.
    sens = np.where(L["type"] == _DEPTHWISE, 2.0, 1.0)

    def drop(bits, full):  # drop of a whole network at 4 bits; ~2.3x less per extra bit
        return np.where(bits < 16, full * 2.0 ** (-1.2 * (bits - 4)), 0.0)

    w_drop = (C @ (sens * L["params"] * drop(L["w_bits"], 2.0))) / np.maximum(C @ L["params"], 1)
    a_drop = (C @ (sens * L["macs"] * drop(L["a_bits"], 3.0))) / np.maximum(C @ L["macs"], 1)
    return w_drop + a_drop


@lru_cache(maxsize=8)
def _capacity_quantiles(space):
    if isinstance(space, OFASpace) and space.quantize:
        # Capacity ignores bit-widths: scale on the float space so that a
        # quantized design and its float twin share the same capacity.
        space = OFASpace()
    ref = space.sample(256, random_state=12345)
    ref = ref[~space.is_degenerate(ref)]
    z = _capacity(*_layer_table(space, ref))
    return tuple(np.percentile(z, [2, 98]))


def _accuracy(space, X, L, C, rng, accuracy_noise):
    floor, ceil, lo, hi = _ACCURACY_SCALE.get(space.name, _ACCURACY_SCALE["fbnet"])
    q_lo, q_hi = _capacity_quantiles(space)
    u = (_capacity(L, C) - q_lo) / max(q_hi - q_lo, 1e-9)
    a = logit((lo - floor) / (ceil - floor))
    b = logit((hi - floor) / (ceil - floor)) - a
    acc = floor + (ceil - floor) * expit(a + b * u)
    acc = acc - _quantization_penalty(L, C)
    scale = _ACCURACY_NOISE_SCALE.get(space.name, 1.0)
    acc = acc + rng.normal(0.0, accuracy_noise * scale, size=len(acc))
    # No path from input to output: the network predicts a constant (chance level).
    dead = space.is_degenerate(X)
    acc[dead] = 10.0 + rng.normal(0.0, 0.05, size=dead.sum())
    return np.clip(acc, 0.0, 100.0)
