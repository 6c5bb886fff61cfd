"""The embedded benchmark simulator: roofline latency and energy on a synthetic device population.

skedge's main job must run with no download, so this module simulates what the
real benchmarks measure: the latency and energy of many designs on many
devices, and the accuracy of each design. The model is deliberately physical
(per-layer roofline, bit-width support, launch overheads, caches, power) so that
the effects that make cross-device prediction hard are present: design rankings
differ across device families, some device factors are not visible in the
device feature table, and low bit-widths pay off only where the hardware has a
matching integer path.

This module assembles the benchmark (:func:`make_edge_benchmark`); the device
population lives in :mod:`skedge.datasets._device_population`, the per-layer
latency / energy / accuracy model in :mod:`skedge.datasets._cost_model`.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.utils import Bunch, check_random_state

from ..spaces import get_space
from ._cost_model import _accuracy, _layer_table, _simulate
from ._device_population import _check_families, _resolve_devices

__all__ = ["make_edge_benchmark", "simulated_truth"]


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


def simulated_truth(bench, designs, devices):
    """Noise-free accuracy, latency and energy of ``designs[i]`` on ``devices[i]``.

    What a design really scores on a simulated device: the model of
    :func:`make_edge_benchmark` without measurement or training noise, for any
    design of the space (not only the benchmark's rows). Use it to score
    proposed designs on devices held out of training.

    Parameters
    ----------
    bench : Bunch
        A benchmark from :func:`make_edge_benchmark` (it carries the hidden
        ``device_params``).
    designs : array-like of shape (n, n_choices)
        Designs of ``bench.space`` (option indices).
    devices : str or sequence of str
        One device name of ``bench`` for all designs, or one per design.

    Returns
    -------
    truth : dict
        ``"accuracy"`` (%), ``"latency"`` (ms per batch) and ``"energy"`` (mJ),
        arrays of shape (n,).

    Raises
    ------
    ValueError
        If ``bench`` is not simulated, a device is not one of its devices, or
        ``devices`` and ``designs`` differ in length.

    Examples
    --------
    >>> from skedge.datasets import make_edge_benchmark, simulated_truth
    >>> bench = make_edge_benchmark(n_designs=50, n_devices=3, random_state=0)
    >>> dev = bench.latency.columns[0]
    >>> truth = simulated_truth(bench, bench.designs[:4], dev)
    >>> truth["latency"].shape
    (4,)
    >>> measured = bench.latency[dev].to_numpy()[:4]  # with 3 % measurement noise
    >>> bool(abs(np.log(measured / truth["latency"])).max() < 0.2)
    True
    """
    if not isinstance(bench.get("device_params"), pd.DataFrame):
        raise ValueError("bench must come from make_edge_benchmark (it has no device_params); "
                         "a measured benchmark has no noise-free truth.")
    designs = np.atleast_2d(np.asarray(designs))
    names = [devices] * len(designs) if isinstance(devices, str) else list(devices)
    if len(names) != len(designs):
        raise ValueError(f"devices has {len(names)} entries for {len(designs)} designs; give "
                         "one device name, or one per design.")
    unique = list(dict.fromkeys(names))
    unknown = [d for d in unique if d not in bench.device_params.index]
    if unknown:
        raise ValueError(f"devices {unknown} are not devices of bench "
                         f"({len(bench.device_params)} devices).")
    sim = Bunch(devices=bench.devices.loc[unique], params=bench.device_params.loc[unique])
    # Noise-free: the random state only seeds noise draws, which are all zero here.
    true = make_edge_benchmark(bench.space, designs=designs, devices=sim, noise=0.0,
                               accuracy_noise=0.0, random_state=0)
    rows = np.arange(len(designs))
    cols = true.latency.columns.get_indexer(names)
    return {"accuracy": np.asarray(true.accuracy, dtype=np.float64),
            "latency": true.latency.to_numpy()[rows, cols],
            "energy": true.energy.to_numpy()[rows, cols]}


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
