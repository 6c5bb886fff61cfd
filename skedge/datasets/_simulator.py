"""The embedded benchmark simulator: roofline latency and energy on a synthetic device population.

skedge's main job must run with no download, so this module simulates what the
real benchmarks measure: the latency and energy of many designs on many
devices, and the accuracy of each design. The model is deliberately physical
(per-layer roofline, bit-width support, launch overheads, caches, power) so that
the effects that make cross-device prediction hard are present: design rankings
differ across device families, some device factors are not visible in the
device feature table, and low bit-widths pay off only where the hardware has a
matching integer path.
"""

from __future__ import annotations

from functools import lru_cache
from numbers import Integral, Real

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.special import expit, logit
from sklearn.utils import Bunch, check_random_state

from ..devices import DEVICE_FEATURES, DEVICE_KINDS, hardware_name, validate_device_table
from ..spaces import OFASpace, get_space

__all__ = ["make_edge_benchmark", "make_device_population", "DEVICE_FAMILIES"]

# Layer type codes of the per-layer arrays: dense, pointwise (1x1), depthwise, linear, pool.
_DENSE, _POINTWISE, _DEPTHWISE, _LINEAR, _POOL = range(5)


def _fam(kind, label, weight, years, *, units, clock, ops, native_bits, bw, on_chip, mem_gb,
         tdp, int8=(0.0, (1.0, 1.0)), int4=(0.0, (1.0, 1.0)), scalable=False, node_lag=0,
         eff, dw_kernel_exp, winograd, lanes, layer_ms, fixed_ms, sustain=(0.85, 1.0),
         bw_eff=(0.55, 0.85), cache_mult, static_frac=(0.1, 0.35), pj_per_byte,
         core_scaling=(1.0, 1.0), often_missing=None):
    return dict(
        kind=kind, label=label, weight=weight, years=years, units=units, clock=clock, ops=ops,
        native_bits=native_bits, bw=bw, on_chip=on_chip, mem_gb=mem_gb, tdp=tdp, int8=int8,
        int4=int4, scalable=scalable, node_lag=node_lag, eff=eff, dw_kernel_exp=dw_kernel_exp,
        winograd=winograd, lanes=lanes, layer_ms=layer_ms, fixed_ms=fixed_ms, sustain=sustain,
        bw_eff=bw_eff, cache_mult=cache_mult, static_frac=static_frac, pj_per_byte=pj_per_byte,
        core_scaling=core_scaling, often_missing=often_missing or {},
    )


#: Device families of the simulated population. Visible specs are (oldest, newest)
#: ranges spanned by a device's generation; ``ops`` is native operations per
#: compute unit per cycle (2 per FMA). ``int8``/``int4`` are (probability the
#: device has that integer path, (min, max) peak gain over the next wider
#: path). ``eff`` is the achieved fraction of peak per layer type (dense,
#: pointwise, depthwise, linear), ``lanes`` the parallel output elements per
#: compute unit needed to half-fill the device, ``layer_ms``/``fixed_ms`` the
#: per-layer and per-inference overheads. Orders of magnitude follow public
#: spec sheets (Cortex-A5x/A7x/X cores, Adreno/Mali, Hexagon, Edge TPU-like NPUs,
#: Jetson, GeForce, Raspberry Pi, x86 desktops, bit-serial FPGA accelerators).
DEVICE_FAMILIES = {
    "phone_big_cpu": _fam(
        "phone_cpu", "phone big-core CPU cluster (Cortex-A7x/X)", 1.5, (2016, 2023),
        units=(1, 4), clock=(2.0, 3.2), ops=(8, 16), native_bits=32,
        int8=(0.7, (2.5, 4.0)), bw=(15, 60), on_chip=(1, 8), mem_gb=(3, 12), tdp=(2, 6),
        eff=(0.3, 0.35, 0.2, 0.15), dw_kernel_exp=(0.0, 0.2), winograd=(1.3, 1.8),
        lanes=(8, 32), layer_ms=(0.02, 0.08), fixed_ms=(0.1, 0.5), sustain=(0.6, 0.95),
        core_scaling=(0.2, 0.8),
        cache_mult=(2, 5), pj_per_byte=(30, 60), often_missing={"tdp_w": 0.5},
    ),
    "phone_little_cpu": _fam(
        "phone_cpu", "phone little-core CPU cluster (Cortex-A5x)", 1.0, (2016, 2023),
        units=(4, 4), clock=(1.4, 2.0), ops=(4, 8), native_bits=32,
        int8=(0.5, (2.0, 4.0)), bw=(15, 60), on_chip=(0.25, 2), mem_gb=(2, 8), tdp=(0.5, 1.5),
        eff=(0.2, 0.25, 0.15, 0.1), dw_kernel_exp=(0.0, 0.2), winograd=(1.2, 1.6),
        lanes=(4, 16), layer_ms=(0.03, 0.1), fixed_ms=(0.1, 0.5), sustain=(0.7, 0.95),
        core_scaling=(0.3, 0.8),
        cache_mult=(2, 4), pj_per_byte=(30, 60), often_missing={"tdp_w": 0.6, "on_chip_mb": 0.3},
    ),
    "phone_gpu": _fam(
        "phone_gpu", "phone GPU (Adreno/Mali, fp16)", 1.2, (2016, 2023),
        units=(256, 1536), clock=(0.5, 0.9), ops=(4, 4), native_bits=16,
        int8=(0.1, (1.5, 2.0)), bw=(15, 60), on_chip=(0.25, 2), mem_gb=(3, 12), tdp=(2, 6),
        eff=(0.4, 0.3, 0.06, 0.05), dw_kernel_exp=(0.1, 0.4), winograd=(1.2, 1.6),
        lanes=(2, 6), layer_ms=(0.03, 0.1), fixed_ms=(0.3, 1.5), sustain=(0.6, 0.95),
        cache_mult=(1.5, 3), pj_per_byte=(30, 60), often_missing={"tdp_w": 0.5, "on_chip_mb": 0.5},
    ),
    "phone_dsp": _fam(
        "phone_dsp", "phone DSP (Hexagon HVX-like, int8)", 0.8, (2017, 2023),
        units=(2, 4), clock=(0.8, 1.5), ops=(256, 1024), native_bits=8,
        bw=(15, 60), on_chip=(0.5, 2), mem_gb=(3, 12), tdp=(0.5, 2),
        eff=(0.5, 0.45, 0.1, 0.05), dw_kernel_exp=(0.5, 1.0), winograd=(1.0, 1.0),
        lanes=(64, 256), layer_ms=(0.02, 0.06), fixed_ms=(1.0, 3.0), sustain=(0.8, 1.0),
        cache_mult=(2, 5), pj_per_byte=(30, 60),
        often_missing={"peak_gflops": 0.6, "clock_ghz": 0.5, "tdp_w": 0.7, "on_chip_mb": 0.5},
    ),
    "npu": _fam(
        "npu", "int8 NPU (Edge TPU / phone NPU-like)", 0.8, (2018, 2023),
        units=(1, 8), clock=(0.5, 1.0), ops=(1000, 3000), native_bits=8,
        int4=(0.5, (1.6, 2.0)), bw=(10, 60), on_chip=(1, 8), mem_gb=(1, 8), tdp=(1, 5),
        eff=(0.7, 0.6, 0.04, 0.03), dw_kernel_exp=(0.5, 1.2), winograd=(1.0, 1.0),
        lanes=(256, 2048), layer_ms=(0.005, 0.03), fixed_ms=(0.3, 1.5),
        cache_mult=(3, 8), pj_per_byte=(30, 60),
        often_missing={"mem_gb": 0.6, "tdp_w": 0.4, "clock_ghz": 0.4},
    ),
    "edge_gpu": _fam(
        "edge_gpu", "edge GPU module (Jetson-like, fp16)", 1.0, (2017, 2023),
        units=(128, 2048), clock=(0.9, 1.3), ops=(4, 4), native_bits=16,
        int8=(0.4, (1.8, 2.2)), bw=(25, 205), on_chip=(0.25, 4), mem_gb=(4, 32), tdp=(5, 60),
        eff=(0.5, 0.4, 0.05, 0.05), dw_kernel_exp=(0.0, 0.3), winograd=(1.2, 1.7),
        lanes=(2, 6), layer_ms=(0.05, 0.25), fixed_ms=(0.3, 1.5),
        cache_mult=(1.5, 3), pj_per_byte=(40, 80),
    ),
    "desktop_gpu": _fam(
        "desktop_gpu", "desktop GPU (GeForce-like, fp32)", 1.0, (2016, 2023),
        units=(1536, 10240), clock=(1.2, 1.9), ops=(2, 2), native_bits=32,
        int8=(0.5, (3.0, 4.0)), bw=(250, 1000), on_chip=(2, 72), mem_gb=(6, 24), tdp=(120, 450),
        eff=(0.6, 0.45, 0.03, 0.05), dw_kernel_exp=(0.0, 0.3), winograd=(1.3, 1.8),
        lanes=(2, 8), layer_ms=(0.06, 0.15), fixed_ms=(0.2, 1.0),
        cache_mult=(1.5, 3), pj_per_byte=(40, 80),
    ),
    "board_cpu": _fam(
        "board_cpu", "single-board CPU (Raspberry-Pi-like)", 1.0, (2016, 2023),
        units=(4, 4), clock=(1.2, 2.4), ops=(4, 16), native_bits=32, node_lag=3,
        int8=(0.3, (2.0, 4.0)), bw=(4, 17), on_chip=(0.5, 2), mem_gb=(1, 8), tdp=(3, 12),
        eff=(0.25, 0.3, 0.2, 0.15), dw_kernel_exp=(0.0, 0.2), winograd=(1.2, 1.6),
        lanes=(4, 16), layer_ms=(0.03, 0.1), fixed_ms=(0.1, 0.5), sustain=(0.7, 1.0),
        core_scaling=(0.3, 0.9),
        cache_mult=(2, 4), pj_per_byte=(60, 120),
    ),
    "desktop_cpu": _fam(
        "desktop_cpu", "desktop x86 CPU (AVX2/AVX-512)", 0.7, (2015, 2023),
        units=(4, 16), clock=(2.5, 4.0), ops=(16, 32), native_bits=32,
        int8=(0.6, (2.0, 4.0)), bw=(35, 90), on_chip=(8, 64), mem_gb=(8, 64), tdp=(45, 165),
        eff=(0.3, 0.35, 0.1, 0.15), dw_kernel_exp=(0.0, 0.2), winograd=(1.3, 1.8),
        lanes=(16, 64), layer_ms=(0.03, 0.15), fixed_ms=(0.05, 0.3), core_scaling=(0.05, 0.4),
        cache_mult=(2, 5), pj_per_byte=(80, 150),
    ),
    "fpga_bitserial": _fam(
        "fpga", "bit-serial FPGA accelerator (BitFusion-like)", 0.5, (2016, 2022),
        units=(512, 4096), clock=(0.15, 0.3), ops=(0.5, 0.5), native_bits=16, scalable=True,
        bw=(10, 80), on_chip=(2, 10), mem_gb=(2, 8), tdp=(5, 30),
        eff=(0.6, 0.6, 0.25, 0.2), dw_kernel_exp=(0.2, 0.5), winograd=(1.0, 1.0),
        lanes=(1, 4), layer_ms=(0.01, 0.05), fixed_ms=(0.2, 1.0),
        cache_mult=(2, 5), pj_per_byte=(50, 100), often_missing={"mem_gb": 0.5},
    ),
}

# Which family simulates a user-supplied device of each kind.
_KIND_TO_FAMILY = {
    "phone_cpu": "phone_big_cpu",
    "phone_gpu": "phone_gpu",
    "phone_dsp": "phone_dsp",
    "npu": "npu",
    "asic": "npu",
    "edge_gpu": "edge_gpu",
    "board_cpu": "board_cpu",
    "desktop_cpu": "desktop_cpu",
    "server_cpu": "desktop_cpu",
    "desktop_gpu": "desktop_gpu",
    "datacenter_gpu": "desktop_gpu",
    "fpga": "fpga_bitserial",
}

_NODES = {2014: 28, 2015: 20, 2016: 16, 2017: 14, 2018: 12, 2019: 7, 2020: 7, 2021: 5, 2022: 5}
_SPEC_COLS = ("peak_gflops", "mem_bandwidth_gbs", "compute_units", "clock_ghz", "on_chip_mb",
              "mem_gb", "tdp_w", "process_nm", "release_year")
_LARGE_BATCHES = (32, 64, 256)


# ------------------------------------------------------------ device population
def _geo(lo, hi, t):
    return lo * (hi / lo) ** np.clip(t, 0.0, 1.0)


def _loguniform(rng, lo_hi):
    lo, hi = lo_hi
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _process_node(year, lag):
    y = int(np.clip(year - lag, 2014, 2023))
    return float(_NODES.get(y, 4))


def _draw_device(fam_name, rng, *, generation=None, batch_size=1):
    """True (visible) specs and hidden parameters of one device of a family."""
    f = DEVICE_FAMILIES[fam_name]
    g = rng.uniform() if generation is None else float(generation)

    def jit():  # specs track the generation loosely
        return g + rng.normal(0.0, 0.15)

    y0, y1 = f["years"]
    year = float(np.clip(round(y0 + g * (y1 - y0) + rng.normal(0, 0.7)), y0, y1))
    units = float(round(_geo(*f["units"], jit())))
    clock = float(round(_geo(*f["clock"], jit()), 3))
    ops = _geo(*f["ops"], jit())
    native_bits = f["native_bits"]
    has_int8 = native_bits == 8 or f["scalable"] or rng.uniform() < f["int8"][0]
    has_int4 = f["scalable"] or (native_bits == 8 and rng.uniform() < f["int4"][0])
    int8_gain = 1.0 if native_bits == 8 else _loguniform(rng, f["int8"][1])
    int4_gain = _loguniform(rng, f["int4"][1]) if has_int4 else 1.0
    peak_native = units * clock * ops
    if f["scalable"]:
        # Bit-serial: throughput ~ 1/(w_bits * a_bits); "native" is 16x16 fixed point.
        int8_gain, int4_gain = 4.0, 4.0
    eff = np.asarray(f["eff"]) * np.exp(rng.normal(0.0, 0.2, size=4))
    hidden = dict(
        family=fam_name,
        units=units,
        native_bits=float(native_bits),
        int8=bool(has_int8 and not f["scalable"]),
        int4=bool(has_int4 and not f["scalable"]),
        scalable=bool(f["scalable"]),
        peak_native=peak_native,
        int8_gain=int8_gain,
        int4_gain=int4_gain,
        eff_dense=eff[0], eff_pointwise=eff[1], eff_depthwise=eff[2], eff_linear=eff[3],
        dw_kernel_exp=rng.uniform(*f["dw_kernel_exp"]),
        winograd=rng.uniform(*f["winograd"]),
        par_half=units * _loguniform(rng, f["lanes"]),
        sustain=rng.uniform(*f["sustain"]),
        core_scaling=rng.uniform(*f["core_scaling"]),
        bw_gbs=float(round(_geo(*f["bw"], jit()), 1)),
        bw_eff=rng.uniform(*f["bw_eff"]),
        on_chip_mb=float(round(_geo(*f["on_chip"], jit()), 2)),
        cache_mult=_loguniform(rng, f["cache_mult"]),
        layer_ms=_loguniform(rng, f["layer_ms"]),
        fixed_ms=_loguniform(rng, f["fixed_ms"]),
        tdp_w=float(round(_geo(*f["tdp"], jit()), 1)),
        static_frac=rng.uniform(*f["static_frac"]),
        pj_per_byte=rng.uniform(*f["pj_per_byte"]),
        batch_size=float(batch_size),
    )
    visible = dict(
        kind=float(DEVICE_KINDS.index(f["kind"])),
        batch_size=float(batch_size),
        precision_bits=_lowest_bits(hidden),
        peak_gflops=float(round(_peak_at(hidden, _lowest_bits(hidden)), 1)),
        mem_bandwidth_gbs=hidden["bw_gbs"],
        compute_units=units,
        clock_ghz=clock,
        on_chip_mb=hidden["on_chip_mb"],
        mem_gb=float(round(_geo(*f["mem_gb"], jit()))),
        tdp_w=hidden["tdp_w"],
        process_nm=_process_node(year, f["node_lag"]),
        release_year=year,
    )
    return visible, hidden


def _lowest_bits(h):
    """Lowest precision a device computes natively: the visible ``precision_bits``."""
    if h["scalable"] or h["int4"]:
        return 4.0
    if h["int8"]:
        return 8.0
    return h["native_bits"]


def _peak_at(h, bits):
    """Spec peak (GOP/s) of a device at one execution precision."""
    if bits >= h["native_bits"]:
        return h["peak_native"]
    peak8 = h["peak_native"] * h["int8_gain"]
    return peak8 * h["int4_gain"] if bits <= 4 else peak8


def _allocate(n_devices, families, rng):
    """How many devices each family gets: every family once, the rest by weight."""
    w = np.array([DEVICE_FAMILIES[f]["weight"] for f in families], dtype=np.float64)
    if n_devices < len(families):
        pick = rng.choice(len(families), size=n_devices, replace=False, p=w / w.sum())
        counts = np.zeros(len(families), dtype=np.int64)
        counts[pick] = 1
        return counts
    rest = n_devices - len(families)
    share = rest * w / w.sum()
    counts = np.floor(share).astype(np.int64)
    left = rest - counts.sum()
    counts[np.argsort(-(share - counts), kind="stable")[:left]] += 1
    return counts + 1


def _check_families(families):
    if families is None:
        return list(DEVICE_FAMILIES)
    families = [families] if isinstance(families, str) else list(families)
    if not families:
        raise ValueError("families is empty; pass None for all device families.")
    unknown = [f for f in families if f not in DEVICE_FAMILIES]
    if unknown:
        raise ValueError(
            f"unknown device family {unknown[0]!r}; choose from {sorted(DEVICE_FAMILIES)}."
        )
    return list(dict.fromkeys(families))


def _check_fraction(value, name):
    if not isinstance(value, Real) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}.")
    return float(value)


def make_device_population(n_devices=40, *, families=None, large_batch_fraction=0.0,
                           missing_rate=0.05, random_state=None):
    """Draw a synthetic population of edge devices with visible features and hidden factors.

    Parameters
    ----------
    n_devices : int, default=40
        Number of device settings. With at least as many devices as families,
        every family gets one device and the rest are shared by family weight;
        with fewer, distinct families are drawn by weight.
    families : list of str, default=None
        Keys of :data:`DEVICE_FAMILIES` to draw from (all when None).
    large_batch_fraction : float, default=0.0
        Fraction of GPU devices (desktop and edge) measured at batch size 32,
        64 or 256 instead of 1; their names end in ``_<batch>`` as in the real
        benchmarks.
    missing_rate : float, default=0.05
        Probability that a spec feature is reported as unknown (NaN), on top of
        the features that some families rarely publish (e.g. a DSP's peak).
    random_state : int, RandomState instance or None, default=None
        Seed of the draw.

    Returns
    -------
    population : Bunch
        ``devices``: DataFrame of :data:`~skedge.devices.DEVICE_FEATURES`
        indexed by device name (what a user or a predictor sees);
        ``params``: DataFrame of the hidden simulation parameters of each
        device (true specs, achieved efficiency per layer type, overheads,
        cache and power factors); ``family``: Series of family names.
        Pass the Bunch as ``devices=`` to :func:`make_edge_benchmark` to
        simulate exactly these devices.

    Examples
    --------
    >>> from skedge.datasets import make_device_population
    >>> pop = make_device_population(12, random_state=0)
    >>> pop.devices.shape
    (12, 12)
    >>> sorted(set(pop.family))[:3]
    ['board_cpu', 'desktop_cpu', 'desktop_gpu']
    """
    if not isinstance(n_devices, Integral) or isinstance(n_devices, bool) or n_devices < 1:
        raise ValueError(f"n_devices must be a positive integer, got {n_devices!r}.")
    families = _check_families(families)
    large_batch_fraction = _check_fraction(large_batch_fraction, "large_batch_fraction")
    missing_rate = _check_fraction(missing_rate, "missing_rate")
    rng = check_random_state(random_state)
    counts = _allocate(int(n_devices), families, rng)
    names, visible, hidden = [], [], []
    for fam, count in zip(families, counts):
        for _ in range(count):
            batch = 1
            is_gpu = DEVICE_FAMILIES[fam]["kind"] in ("edge_gpu", "desktop_gpu")
            if is_gpu and rng.uniform() < large_batch_fraction:
                batch = int(rng.choice(_LARGE_BATCHES))
            vis, hid = _draw_device(fam, rng, batch_size=batch)
            often = DEVICE_FAMILIES[fam]["often_missing"]
            for col in _SPEC_COLS:
                if rng.uniform() < max(missing_rate, often.get(col, 0.0)):
                    vis[col] = np.nan
            name = f"sim{len(names):02d}_{fam}" + (f"_{batch}" if batch > 1 else "")
            names.append(name)
            visible.append(vis)
            hidden.append(hid)
    index = pd.Index(names, name="device")
    devices = pd.DataFrame(visible, index=index)[list(DEVICE_FEATURES)].astype(np.float64)
    params = pd.DataFrame(hidden, index=index)
    return Bunch(devices=devices, params=params, family=params["family"].copy())


def _params_from_features(table, rng):
    """Hidden parameters for user-supplied device rows: family draw, overridden by known specs."""
    hidden, drawn = [], {}
    for name, row in table.iterrows():
        kind = DEVICE_KINDS[int(row["kind"])] if np.isfinite(row["kind"]) else "phone_cpu"
        fam = _KIND_TO_FAMILY[kind]
        if kind == "phone_cpu" and np.isfinite(row["clock_ghz"]) and row["clock_ghz"] < 2.0:
            fam = "phone_little_cpu"
        f = DEVICE_FAMILIES[fam]
        y0, y1 = f["years"]
        gen = None
        if np.isfinite(row["release_year"]):
            gen = float(np.clip((row["release_year"] - y0) / (y1 - y0), 0, 1))
        batch = row["batch_size"]
        batch = batch if np.isfinite(batch) and batch >= 1 else 1.0
        # Settings of one piece of hardware (``1080ti_1``, ``1080ti_32``) share its hidden draw.
        key = (hardware_name(str(name)), fam)
        if key not in drawn:
            drawn[key] = _draw_device(fam, rng, generation=gen)[1]
        h = dict(drawn[key], batch_size=float(batch))
        bits = row["precision_bits"]
        if np.isfinite(bits) and not h["scalable"]:
            if bits >= 16:
                h.update(native_bits=float(16 if bits < 32 else 32), int8=False, int4=False)
            else:
                h.update(int8=True, int4=bool(bits <= 4))
                if h["int4"] and h["int4_gain"] == 1.0:
                    h["int4_gain"] = 1.8
                if h["native_bits"] > 8 and h["int8_gain"] == 1.0:
                    h["int8_gain"] = 3.0
        units, clock = row["compute_units"], row["clock_ghz"]
        if np.isfinite(units) and units > 0:
            h["par_half"] *= units / h["units"]
            h["units"] = float(units)
        if np.isfinite(row["peak_gflops"]) and row["peak_gflops"] > 0:
            # The listed peak is at the listed precision; scale the native peak to match.
            h["peak_native"] *= row["peak_gflops"] / _peak_at(h, _lowest_bits(h))
        elif np.isfinite(units) and np.isfinite(clock) and units > 0 and clock > 0:
            h["peak_native"] = units * clock * np.sqrt(np.prod(f["ops"]))
        for col, field in (("mem_bandwidth_gbs", "bw_gbs"), ("on_chip_mb", "on_chip_mb"),
                           ("tdp_w", "tdp_w")):
            if np.isfinite(row[col]) and row[col] > 0:
                h[field] = float(row[col])
        hidden.append(h)
    return pd.DataFrame(hidden, index=table.index)


def _resolve_devices(devices, n_devices, families, large_batch_fraction, rng):
    if devices is None:
        pop = make_device_population(
            n_devices, families=families, large_batch_fraction=large_batch_fraction,
            random_state=rng,
        )
        return pop.devices, pop.params
    if isinstance(devices, Bunch) or (isinstance(devices, dict) and "params" in devices):
        table = validate_device_table(devices["devices"], source="devices")
        params = devices["params"].loc[table.index]
        return table, params
    if not isinstance(devices, pd.DataFrame):
        raise ValueError(
            "devices must be a DataFrame of device features or a Bunch from "
            f"make_device_population, got {type(devices).__name__}."
        )
    table = validate_device_table(devices, source="devices")
    if len(table) == 0:
        raise ValueError("devices is an empty table.")
    return table, _params_from_features(table, rng)


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
    if space.name == "nb201":
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
    if space.name == "nb201":
        # No path from input to output: the network predicts a constant (chance level).
        dead = space.is_degenerate(X)
        acc[dead] = 10.0 + rng.normal(0.0, 0.05, size=dead.sum())
    return np.clip(acc, 0.0, 100.0)


# -------------------------------------------------------------------- public
def _reference_positions(macs, k=10):
    """``k`` designs spread over the MACs quantiles (row positions, sorted)."""
    order = np.argsort(macs, kind="stable")
    if len(order) <= k:
        return np.sort(order).astype(np.int64)
    pos = ((np.arange(k) + 0.5) / k * len(order)).astype(np.int64)
    return np.sort(order[pos]).astype(np.int64)


def _sample_unique(space, n, rng):
    if n > space.size:
        raise ValueError(f"n_designs={n} exceeds the {space.size} distinct designs of {space!r}.")
    X = np.unique(space.sample(n, rng), axis=0)
    while len(X) < n:
        X = np.unique(np.vstack([X, space.sample(n - len(X), rng)]), axis=0)
    return X[rng.permutation(len(X))]


def make_edge_benchmark(space="ofa-quant", *, n_designs=2000, n_devices=40, random_state=None,
                        noise=0.03, accuracy_noise=0.2, families=None, large_batch_fraction=0.0,
                        designs=None, devices=None):
    """Simulate a cross-device benchmark: latency, energy and accuracy of designs on edge devices.

    A physically grounded stand-in for the measured benchmarks (HELP, OneProxy,
    OFA), so that every skedge workflow runs with no download. The result
    follows the benchmark Bunch contract of :func:`skedge.datasets.to_pairs`.

    Parameters
    ----------
    space : str or DesignSpace, default="ofa-quant"
        Design space (``"ofa-quant"``, ``"ofa"``, ``"nb201"``, ``"fbnet"`` or
        any :class:`~skedge.spaces.DesignSpace` with a ``layers`` model).
    n_designs : int, default=2000
        Number of distinct designs drawn uniformly from the space; ignored
        when ``designs`` is given.
    n_devices : int, default=40
        Number of simulated device settings; ignored when ``devices`` is given.
    random_state : int, RandomState instance or None, default=None
        Seed. Designs, devices and noise use independent sub-seeds, so the
        devices drawn do not depend on ``n_designs``.
    noise : float, default=0.03
        Standard deviation of the multiplicative log-normal measurement noise
        on latency and energy (0 gives the noise-free model).
    accuracy_noise : float, default=0.2
        Standard deviation (points) of the per-design training noise on
        accuracy (scaled 1.5x for CIFAR-10 NB201).
    families : list of str, default=None
        Device families to draw from (keys of :data:`DEVICE_FAMILIES`); all
        when None.
    large_batch_fraction : float, default=0.0
        Fraction of GPU devices measured at batch 32/64/256 instead of 1.
    designs : array-like of shape (n, n_choices), default=None
        Your own designs (option indices) instead of random ones.
    devices : DataFrame or Bunch, default=None
        Your own devices instead of a random population: a Bunch from
        :func:`make_device_population` is simulated exactly; a DataFrame of
        :data:`~skedge.devices.DEVICE_FEATURES` (as from
        :func:`~skedge.datasets.load_devices`) gets its hidden factors drawn
        from the family of its ``kind`` (seeded by ``random_state``), with
        every listed spec (peak at ``precision_bits``, bandwidth, on-chip
        memory, TDP, compute units, batch size) overriding the draw.

    Returns
    -------
    bench : Bunch
        The benchmark contract fields ``space``, ``designs``, ``design_ids``
        (row numbers), ``accuracy`` (%), ``latency`` (DataFrame, ms per batch),
        ``energy`` (DataFrame, mJ per batch), ``devices``, ``reference_idx``
        (10 designs spread over the MACs quantiles) and ``DESCR``, plus
        ``family`` (Series: device family of each device), ``device_params``
        (DataFrame: the hidden simulation parameters), ``macs`` and
        ``n_params`` (per design).

    Raises
    ------
    ValueError
        Naming the bad argument: unknown space or family, ``n_designs`` or
        ``n_devices`` below 1, a negative or non-finite ``noise``, designs
        that do not fit the space, a malformed device table.

    Notes
    -----
    **Designs.** ``space.layers(x)`` gives per-layer MACs, weights and
    activation sizes; each layer is typed dense, pointwise (1x1), depthwise,
    linear or pool, and carries its weight/activation bit-widths.

    **Devices.** Families (:data:`DEVICE_FAMILIES`) resemble real hardware:
    phone big and little CPU clusters, phone GPUs, int8 DSPs and NPUs, Jetson-
    like edge GPUs, desktop GPUs, Raspberry-Pi-like boards, desktop CPUs and
    bit-serial FPGA accelerators, with published-order-of-magnitude peak
    GOP/s, DRAM bandwidth, clock, compute units, on-chip memory, TDP, process
    node and release year, loosely tied to a per-device generation. The
    ``devices`` table shows these specs (some NaN, as in real spec sheets);
    ``precision_bits`` is the lowest precision with a native path and
    ``peak_gflops`` the peak at that precision. Hidden per-device factors
    keep the features from determining latency: achieved efficiency per layer
    type (depthwise convolutions are poor on GPUs, DSPs and NPUs, fair on
    CPUs; larger depthwise kernels hurt DSPs and NPUs most), Winograd speed-up
    of 3x3 convolutions, parallelism needed to fill the device, useful share
    of extra CPU cores, thermal sustain factor, which integer paths exist and
    their gain, achievable bandwidth, cache speed-up, per-layer launch and
    per-inference overheads, static power share and DRAM energy per byte.

    **Latency** of a batch (ms) is a per-layer roofline::

        t = max(2 * batch * MACs / (peak(bits) * eff(type) * util * cores * sustain),
                bytes / bandwidth_eff(cache)) + t_dequant + t_layer

    summed over layers, plus a fixed per-inference overhead. ``util =
    P / (P + P_half)`` with ``P`` the batch's output elements (wide GPUs are
    underused by small layers at batch 1); ``cores`` is the multi-core
    scaling of CPUs. A layer quantized to ``b`` bits
    runs on an integer path only where the device has one (int8 on DSPs,
    NPUs and some CPUs/GPUs, int4 on some NPUs, any width on bit-serial
    accelerators, whose throughput scales as ``64 / (w_bits * a_bits)``);
    elsewhere it runs at the native precision after dequantization
    (``t_dequant``), so low bit-widths are never faster there. Traffic counts
    weights once and activations per image at the execution precision; the
    share of a layer's working set that fits in half the on-chip memory is
    served ``cache_mult`` times faster.

    **Energy** (mJ) = static power x latency + MACs x pJ/MAC (the dynamic
    power share of the TDP at peak throughput of the execution precision) +
    DRAM bytes x pJ/byte (on-chip bytes cost a tenth). Latency and energy get
    independent multiplicative log-normal noise of standard deviation
    ``noise``.

    **Accuracy** (%) is a logistic (saturating) function of a log-capacity
    score (MACs, weights, depth and kernel size), scaled per space so that
    random designs span about 71.5-78.5 % (OFA, ImageNet top-1), 70.5-75.5 %
    (FBNet) or 76-94 % (NB201 CIFAR-10; degenerate cells sit at 10 %), minus
    a quantization penalty that grows about 2.3x per bit removed (4 bits hurts
    far more than 8; depthwise layers count double), plus Gaussian noise.

    Examples
    --------
    >>> from skedge.datasets import make_edge_benchmark
    >>> bench = make_edge_benchmark(n_designs=50, n_devices=4, random_state=0)
    >>> bench.latency.shape, bench.energy.shape, bench.devices.shape
    ((50, 4), (50, 4), (4, 12))
    >>> bool((bench.latency.to_numpy() > 0).all()), len(bench.reference_idx)
    (True, 10)
    """
    space_obj = get_space(space)
    if not isinstance(noise, Real) or not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a finite non-negative number, got {noise!r}.")
    if (not isinstance(accuracy_noise, Real) or not np.isfinite(accuracy_noise)
            or accuracy_noise < 0):
        raise ValueError(
            f"accuracy_noise must be a finite non-negative number, got {accuracy_noise!r}."
        )
    if devices is None and (
        not isinstance(n_devices, Integral) or isinstance(n_devices, bool) or n_devices < 1
    ):
        raise ValueError(f"n_devices must be a positive integer, got {n_devices!r}.")
    if designs is None and (
        not isinstance(n_designs, Integral) or isinstance(n_designs, bool) or n_designs < 1
    ):
        raise ValueError(f"n_designs must be a positive integer, got {n_designs!r}.")
    families = _check_families(families)
    rng = check_random_state(random_state)
    seeds = rng.randint(np.iinfo(np.int32).max, size=4)
    rng_designs, rng_devices, rng_acc, rng_noise = (np.random.RandomState(s) for s in seeds)

    if designs is None:
        X = _sample_unique(space_obj, int(n_designs), rng_designs)
    else:
        X = space_obj.validate(designs, canonicalize=True)
        if len(X) == 0:
            raise ValueError("designs is empty.")
    table, params = _resolve_devices(devices, n_devices, families, large_batch_fraction,
                                     rng_devices)

    L, C = _layer_table(space_obj, X)
    macs = np.rint(C @ L["macs"]).astype(np.int64)
    n_params = np.rint(C @ L["params"]).astype(np.int64)
    lat, energy = _simulate(L, C, params)
    if noise > 0:
        lat *= np.exp(rng_noise.normal(0.0, noise, size=lat.shape))
        energy *= np.exp(rng_noise.normal(0.0, noise, size=energy.shape))
    accuracy = _accuracy(space_obj, X, L, C, rng_acc, float(accuracy_noise))

    ids = np.arange(len(X), dtype=np.int64)
    index = pd.Index(ids, name="design_id")
    columns = pd.Index(list(table.index), name="device")
    family = params["family"].copy() if "family" in params else pd.Series(
        "unknown", index=table.index)
    return Bunch(
        space=space_obj,
        designs=X,
        design_ids=ids,
        accuracy=accuracy,
        latency=pd.DataFrame(lat, index=index, columns=columns),
        energy=pd.DataFrame(energy, index=index, columns=columns.copy()),
        devices=table,
        reference_idx=_reference_positions(macs),
        DESCR=_describe(space_obj, len(X), family, noise),
        family=family.rename("family"),
        device_params=params,
        macs=macs,
        n_params=n_params,
    )


def _describe(space, n, family, noise):
    counts = family.value_counts().sort_index()
    fams = ", ".join(f"{name} ({c})" for name, c in counts.items())
    return (
        f"Simulated edge benchmark (skedge.datasets.make_edge_benchmark)\n"
        f"Space: {space!r}; {n} designs; {len(family)} device settings: {fams}.\n"
        "Latency (ms per batch) from a per-layer roofline with device-specific efficiency per "
        "layer type, bit-width support, launch overheads and cache effects; energy (mJ) from "
        "static power, per-MAC and per-byte energy; accuracy (%) from a saturating capacity "
        f"model minus a quantization penalty. Log-normal measurement noise sigma={noise}.\n"
        "Synthetic data: use it to develop and test workflows, not to report hardware results."
    )
