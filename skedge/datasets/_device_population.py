"""The simulator's device population: families of edge hardware and their hidden factors.

Each family (:data:`DEVICE_FAMILIES`) spans a range of years and draws a device's
public specs (the :data:`~skedge.devices.DEVICE_FEATURES` row) and hidden factors
(per-layer-type efficiency, launch overheads, integer paths, power) that the cost
model (:mod:`skedge.datasets._cost_model`) turns into latency and energy.
:func:`make_device_population` draws a population; user-supplied device rows get
their hidden factors from the family of their ``kind`` (``_params_from_features``).
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.utils import Bunch, check_random_state

from ..devices import DEVICE_FEATURES, DEVICE_KINDS, hardware_name, validate_device_table

__all__ = ["DEVICE_FAMILIES", "make_device_population"]


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
