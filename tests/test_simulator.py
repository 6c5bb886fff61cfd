"""Tests of the simulator (make_edge_benchmark, make_device_population) and `skedge demo`."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.utils import Bunch

from skedge.cli import main
from skedge.datasets import (
    DEVICE_FAMILIES,
    make_device_population,
    make_edge_benchmark,
    simulated_truth,
    to_pairs,
)
from skedge.devices import DEVICE_FEATURES, DEVICE_KINDS, hardware_name
from skedge.spaces import FBNetSpace, NB201Space, OFASpace, get_space

SPEC_COLS = ["peak_gflops", "mem_bandwidth_gbs", "compute_units", "clock_ghz", "on_chip_mb",
             "mem_gb", "tdp_w", "process_nm", "release_year"]


@pytest.fixture(scope="module")
def bench():
    return make_edge_benchmark(n_designs=300, n_devices=30, random_state=0)


def _with(space, x, **cols):
    """Copy of design ``x`` with whole column groups (``"e"``, ``"wb"``, ...) or ``r`` set."""
    x = np.array(x, copy=True)
    for key, value in cols.items():
        sl = getattr(space, f"_{key.upper()}")
        x[sl] = value
    return space.canonicalize(x[None])[0]


# ---------------------------------------------------------------- contract
def test_bunch_contract(bench):
    n, m = 300, 30
    assert bench.space == OFASpace(quantize=True)
    assert bench.designs.shape == (n, bench.space.n_choices)
    assert bench.designs.dtype == np.int64
    np.testing.assert_array_equal(bench.space.validate(bench.designs, canonicalize=True),
                                  bench.designs)
    assert len(np.unique(bench.designs, axis=0)) == n
    np.testing.assert_array_equal(bench.design_ids, np.arange(n))
    assert bench.accuracy.shape == (n,) and bench.accuracy.dtype == np.float64
    for table in (bench.latency, bench.energy):
        assert isinstance(table, pd.DataFrame)
        assert table.shape == (n, m)
        assert (table.dtypes == np.float64).all()
        np.testing.assert_array_equal(table.index.to_numpy(), bench.design_ids)
    assert list(bench.energy.columns) == list(bench.latency.columns)
    assert list(bench.devices.columns) == list(DEVICE_FEATURES)
    assert list(bench.devices.index) == list(bench.latency.columns)
    assert (bench.devices.dtypes == np.float64).all()
    assert bench.devices["kind"].isin(range(len(DEVICE_KINDS))).all()
    assert (bench.devices["batch_size"] == 1).all()
    assert isinstance(bench.DESCR, str) and "Simulated" in bench.DESCR
    assert list(bench.family.index) == list(bench.latency.columns)
    assert set(bench.family) <= set(DEVICE_FAMILIES)
    assert list(bench.device_params.index) == list(bench.latency.columns)
    np.testing.assert_array_equal(bench.macs, bench.space.macs(bench.designs))
    np.testing.assert_array_equal(bench.n_params, bench.space.params(bench.designs))


def test_reference_designs_spread_over_macs(bench):
    ref = bench.reference_idx
    assert ref.dtype == np.int64 and len(ref) == 10 and len(np.unique(ref)) == 10
    assert ((ref >= 0) & (ref < len(bench.designs))).all()
    ranks = pd.Series(bench.macs).rank(pct=True).to_numpy()[ref]
    assert ranks.min() < 0.1 and ranks.max() > 0.9


def test_device_kinds_match_families(bench):
    kinds = bench.devices["kind"].map(lambda k: DEVICE_KINDS[int(k)])
    for name, fam in bench.family.items():
        assert kinds[name] == DEVICE_FAMILIES[fam]["kind"]
    # 30 devices over the 10 families: every family appears.
    assert set(bench.family) == set(DEVICE_FAMILIES)


def test_device_table_is_informative_but_incomplete(bench):
    dev = bench.devices
    assert dev[["kind", "batch_size", "precision_bits"]].notna().all().all()
    assert dev[SPEC_COLS].isna().to_numpy().any()
    assert dev[SPEC_COLS].notna().to_numpy().mean() > 0.6
    assert set(dev["precision_bits"]) <= {4.0, 8.0, 16.0, 32.0}
    # Desktop GPUs are listed far faster than phone little cores.
    fam = bench.family
    assert (dev.loc[fam == "desktop_gpu", "peak_gflops"].min()
            > dev.loc[fam == "phone_little_cpu", "peak_gflops"].max())


def test_to_pairs_works(bench):
    X, y, groups = to_pairs(bench)
    n, m = bench.latency.shape
    assert X.shape == (n * m, bench.space.n_choices + len(DEVICE_FEATURES))
    name = bench.latency.columns[3]
    np.testing.assert_allclose(y[groups == name], bench.latency[name].to_numpy())
    _, ye, _ = to_pairs(bench, target="energy", devices=[name])
    np.testing.assert_allclose(ye, bench.energy[name].to_numpy())


def test_doctest_call_is_cheap_and_valid():
    b = make_edge_benchmark(n_designs=20, n_devices=3, random_state=0)
    X, y, groups = to_pairs(b)
    assert X.shape[0] == y.shape[0] == groups.shape[0] == 60
    assert len(set(groups)) == 3


# ------------------------------------------------------------- determinism
def test_same_seed_same_benchmark():
    a = make_edge_benchmark("nb201", n_designs=60, n_devices=6, random_state=7)
    b = make_edge_benchmark("nb201", n_designs=60, n_devices=6, random_state=7)
    np.testing.assert_array_equal(a.designs, b.designs)
    np.testing.assert_array_equal(a.accuracy, b.accuracy)
    pd.testing.assert_frame_equal(a.latency, b.latency)
    pd.testing.assert_frame_equal(a.energy, b.energy)
    pd.testing.assert_frame_equal(a.devices, b.devices)
    np.testing.assert_array_equal(a.reference_idx, b.reference_idx)


@pytest.mark.parametrize("space, seed, latency, energy, accuracy, designs", [
    ("nb201", 0, 3446.5052699637054, 47088.34717173304, 3611.3652936552216, 503),
    ("ofa-quant", 1, 13872.341411725458, 61930.383816167894, 2939.131893620243, 3037),
])
def test_benchmark_pinned(space, seed, latency, energy, accuracy, designs):
    # Sums recorded before the simulator was split into modules (#13): a refactoring must
    # leave the numbers as they were (the rtol only absorbs summation-order rounding).
    b = make_edge_benchmark(space, n_designs=40, n_devices=8, random_state=seed,
                            large_batch_fraction=0.5)
    assert int(b.designs.sum()) == designs
    np.testing.assert_allclose(
        [b.latency.to_numpy().sum(), b.energy.to_numpy().sum(), b.accuracy.sum()],
        [latency, energy, accuracy], rtol=1e-12)


def test_different_seed_different_benchmark():
    a = make_edge_benchmark("nb201", n_designs=60, n_devices=6, random_state=7)
    b = make_edge_benchmark("nb201", n_designs=60, n_devices=6, random_state=8)
    assert not np.array_equal(a.designs, b.designs)
    assert not a.devices.equals(b.devices)
    # Same designs and devices, different seed: only the noise differs.
    c = make_edge_benchmark("nb201", designs=a.designs, devices={
        "devices": a.devices, "params": a.device_params}, random_state=9)
    ratio = c.latency.to_numpy() / a.latency.to_numpy()
    assert not np.allclose(ratio, 1.0)
    assert np.abs(np.log(ratio)).max() < 0.3  # noise=0.03: a few percent


def test_devices_do_not_depend_on_n_designs():
    a = make_edge_benchmark("fbnet", n_designs=10, n_devices=5, random_state=3)
    b = make_edge_benchmark("fbnet", n_designs=25, n_devices=5, random_state=3)
    pd.testing.assert_frame_equal(a.devices, b.devices)


def test_noise_free_model_has_no_noise():
    a = make_edge_benchmark("nb201", n_designs=30, n_devices=4, random_state=1, noise=0)
    b = make_edge_benchmark("nb201", designs=a.designs, devices={
        "devices": a.devices, "params": a.device_params}, random_state=99, noise=0)
    np.testing.assert_allclose(a.latency.to_numpy(), b.latency.to_numpy(), rtol=1e-12)


# ------------------------------------------------------------ latency physics
def test_latency_and_energy_positive_finite(bench):
    for table in (bench.latency, bench.energy):
        values = table.to_numpy()
        assert np.isfinite(values).all() and (values > 0).all()
    # Orders of magnitude of real measurements: ~0.5 ms .. ~1 s per image.
    assert 0.3 < np.median(bench.latency.to_numpy()) < 200


def _family_latency(bench):
    return np.log(bench.latency).T.groupby(bench.family).mean().T


def test_rankings_differ_across_families_but_not_within(bench):
    per_family = _family_latency(bench)
    rho_cross = spearmanr(per_family["desktop_gpu"], per_family["phone_big_cpu"])[0]
    assert rho_cross < 0.8
    corr = bench.latency.corr(method="spearman")
    for fam in ("phone_big_cpu", "board_cpu", "desktop_gpu"):
        names = bench.family.index[bench.family == fam]
        assert len(names) >= 2
        within = corr.loc[names, names].to_numpy()[np.triu_indices(len(names), 1)]
        assert within.min() > 0.9, fam
    # CPUs are MAC-bound: their ranking follows MACs; GPUs at batch 1 are not.
    assert spearmanr(per_family["phone_big_cpu"], bench.macs)[0] > 0.8
    assert spearmanr(per_family["desktop_gpu"], bench.macs)[0] < 0.7


@pytest.mark.parametrize("space_name", ["ofa-quant", "ofa"])
def test_more_work_means_more_latency(space_name):
    space = get_space(space_name)
    pop = make_device_population(20, random_state=2)
    base = space.sample(1, random_state=5)[0]
    expand = [_with(space, base, e=e) for e in range(3)]
    resolution = [_with(space, base, r=r) for r in range(0, 25, 6)]
    b = make_edge_benchmark(space, designs=np.vstack(expand + resolution), devices=pop, noise=0)
    assert (np.diff(b.macs[:3]) > 0).all() and (np.diff(b.macs[3:]) > 0).all()
    cpus = b.family.index[b.family.str.endswith("cpu")]
    assert len(cpus) >= 4
    lat = b.latency[cpus].to_numpy()
    assert (np.diff(lat[:3], axis=0) > 0).all()
    assert (np.diff(lat[3:], axis=0) > 0).all()
    # MAC-bound: latency grows by a good share of the MAC growth.
    growth = lat[2] / lat[0]
    assert (growth > 1 + 0.4 * (b.macs[2] / b.macs[0] - 1)).all()
    energy = b.energy.to_numpy()
    assert (np.diff(energy[:3], axis=0) > 0).all()
    assert (np.diff(energy[3:], axis=0) > 0).all()


def test_low_bit_width_is_faster_only_where_supported():
    space = OFASpace(quantize=True)
    pop = make_device_population(40, random_state=0)
    extra = make_device_population(6, families=["npu"], random_state=1)
    devices = {
        "devices": pd.concat([pop.devices, extra.devices.rename(lambda s: "x" + s)]),
        "params": pd.concat([pop.params, extra.params.rename(lambda s: "x" + s)]),
    }
    params = devices["params"]
    assert params["int4"].any() and params["scalable"].any()
    assert (~params["int8"] & ~params["scalable"]).any()
    base = space.sample(1, random_state=4)[0]
    x4 = _with(space, base, wb=0, ab=0)
    x8 = _with(space, base, wb=2, ab=2)
    b = make_edge_benchmark(space, designs=[x4, x8], devices=devices, noise=0)
    ratio = b.latency.iloc[0] / b.latency.iloc[1]
    fast4 = params["int4"] | params["scalable"]
    assert (ratio[fast4] < 0.99).all()
    np.testing.assert_allclose(ratio[~fast4], 1.0, rtol=1e-9)
    # The visible precision says which devices have a 4-bit path.
    np.testing.assert_array_equal(b.devices["precision_bits"] == 4, fast4)

    # 8-bit vs the same network in float: faster only with an integer path.
    fp = OFASpace()
    b_fp = make_edge_benchmark(fp, designs=[base[: fp.n_choices]], devices=devices, noise=0)
    ratio8 = b.latency.iloc[1].to_numpy() / b_fp.latency.iloc[0].to_numpy()
    int_path = (params["int8"] | params["scalable"]).to_numpy()
    float_native = (params["native_bits"] > 8).to_numpy()
    assert (ratio8[int_path & float_native] < 1.0).all()
    assert (ratio8[~int_path] >= 1.0).all()  # dequantization overhead, no speed-up


def test_depthwise_hurts_gpus_more_than_cpus():
    # FBNet: k3_e6 blocks vs k5_e6 blocks (larger depthwise kernels, little extra MACs).
    space = FBNetSpace()
    k3 = np.full((1, 22), 3)
    k5 = np.full((1, 22), 7)
    pop = make_device_population(40, random_state=0)
    b = make_edge_benchmark(space, designs=np.vstack([k3, k5]), devices=pop, noise=0)
    slow = (b.latency.iloc[1] / b.latency.iloc[0]).groupby(b.family).median()
    assert slow["npu"] > slow["phone_big_cpu"]


def test_batch_scales_work_for_the_same_hardware():
    pop = make_device_population(6, families=["desktop_gpu"], random_state=0)
    row = pop.devices.iloc[[0, 0]].copy()
    row.index = ["gpu_1", "gpu_64"]
    row["batch_size"] = [1.0, 64.0]
    b = make_edge_benchmark("nb201", n_designs=40, devices=row, noise=0, random_state=0)
    lat = b.latency.to_numpy()
    assert (lat[:, 1] > lat[:, 0]).all()  # a batch of 64 takes longer ...
    assert (lat[:, 1] / 64 < lat[:, 0]).all()  # ... but far less per image


# ------------------------------------------------------------ user devices
def test_user_device_table_only_those_devices():
    table = pd.DataFrame({
        "device": ["my_phone", "my_jetson", "my_dsp"],
        "kind": ["phone_cpu", "edge_gpu", "phone_dsp"],
        "batch_size": [1, 1, 1],
        "precision_bits": [32, 16, 8],
        "peak_gflops": [80.0, 472.0, np.nan],
        "mem_bandwidth_gbs": [30.0, 25.6, 34.1],
        "compute_units": [4, 128, 4],
        "clock_ghz": [2.5, 0.92, np.nan],
        "on_chip_mb": [2, 0.25, np.nan],
        "mem_gb": [4, 4, np.nan],
        "tdp_w": [np.nan, 10, np.nan],
        "process_nm": [10, 20, 7],
        "release_year": [2018, 2019, 2019],
    })
    b = make_edge_benchmark("ofa", n_designs=30, devices=table, random_state=0)
    assert list(b.latency.columns) == ["my_phone", "my_jetson", "my_dsp"]
    assert list(b.family) == ["phone_big_cpu", "edge_gpu", "phone_dsp"]
    assert b.devices.loc["my_jetson", "kind"] == DEVICE_KINDS.index("edge_gpu")
    assert np.isfinite(b.latency.to_numpy()).all()
    assert b.device_params.loc["my_jetson", "tdp_w"] == 10
    # The listed specs drive the simulation: a 4x faster listed peak is faster.
    fast = table.copy()
    fast.loc[0, "peak_gflops"] = 320.0
    b_fast = make_edge_benchmark("ofa", designs=b.designs, devices=fast, noise=0, random_state=0)
    b_slow = make_edge_benchmark("ofa", designs=b.designs, devices=table, noise=0, random_state=0)
    assert (b_fast.latency["my_phone"] < b_slow.latency["my_phone"]).all()
    np.testing.assert_allclose(b_fast.latency["my_dsp"], b_slow.latency["my_dsp"])


def test_population_allocation_and_names():
    pop = make_device_population(4, random_state=0)
    assert len(pop.devices) == 4 and pop.family.nunique() == 4
    big = make_device_population(25, families=["desktop_gpu", "edge_gpu"],
                                 large_batch_fraction=1.0, random_state=0)
    assert set(big.family) == {"desktop_gpu", "edge_gpu"}
    assert set(big.devices["batch_size"]) <= {32.0, 64.0, 256.0}
    for name, batch in big.devices["batch_size"].items():
        assert name.endswith(f"_{int(batch)}")
        assert hardware_name(name) == name.rsplit("_", 1)[0]
    plain = make_device_population(30, random_state=0)
    assert all(hardware_name(n) == n for n in plain.devices.index)


# ---------------------------------------------------------------- accuracy
def test_accuracy_ranges():
    ofa = make_edge_benchmark("ofa", n_designs=300, n_devices=1, random_state=0)
    assert 60 < ofa.accuracy.min() and ofa.accuracy.max() < 82
    assert np.percentile(ofa.accuracy, 95) - np.percentile(ofa.accuracy, 5) > 3
    # Capacity with diminishing returns: more MACs, more accuracy.
    assert spearmanr(ofa.accuracy, ofa.macs)[0] > 0.7
    nb = make_edge_benchmark("nb201", n_designs=2000, n_devices=1, random_state=0)
    dead = NB201Space().is_degenerate(nb.designs)
    assert dead.any()
    np.testing.assert_allclose(nb.accuracy[dead], 10.0, atol=0.5)
    alive = nb.accuracy[~dead]
    assert 84 < np.median(alive) < 94 and alive.max() < 95.5 and alive.min() > 30


def test_quantization_penalty():
    space = OFASpace(quantize=True)
    base = space.sample(1, random_state=11)[0]
    designs = [_with(space, base, wb=b, ab=b) for b in (0, 1, 2)]  # 4, 6, 8 bits
    b = make_edge_benchmark(space, designs=designs, n_devices=1, accuracy_noise=0)
    fp = make_edge_benchmark(OFASpace(), designs=[base[:46]], n_devices=1, accuracy_noise=0)
    acc4, acc6, acc8 = b.accuracy
    assert acc4 < acc6 < acc8 < fp.accuracy[0]
    assert fp.accuracy[0] - acc8 < 1.0  # 8 bits is almost free
    assert acc8 - acc4 > 2.0  # 4 bits hurts much more
    assert (acc8 - acc4) > 3 * (fp.accuracy[0] - acc8)


@pytest.mark.parametrize("space", ["ofa-quant", "ofa", "nb201", "fbnet", NB201Space()])
def test_every_space_simulates(space):
    b = make_edge_benchmark(space, n_designs=15, n_devices=3, random_state=0)
    assert b.latency.shape == (15, 3)
    assert np.isfinite(b.latency.to_numpy()).all() and np.isfinite(b.accuracy).all()
    assert b.space == get_space(space)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"space": "resnet"}, "resnet"),
        ({"n_devices": 0}, "n_devices"),
        ({"n_devices": 2.5}, "n_devices"),
        ({"n_designs": 0}, "n_designs"),
        ({"noise": -0.1}, "noise"),
        ({"noise": float("nan")}, "noise"),
        ({"noise": "big"}, "noise"),
        ({"accuracy_noise": -1}, "accuracy_noise"),
        ({"families": ["tpu_pod"]}, "tpu_pod"),
        ({"families": []}, "families"),
        ({"large_batch_fraction": 2.0}, "large_batch_fraction"),
        ({"designs": [[0, 1, 2]]}, "columns"),
        ({"devices": "pixel3"}, "devices"),
        ({"space": "nb201", "n_designs": 20000}, "n_designs"),
    ],
)
def test_bad_input_raises(kwargs, match):
    kwargs = {"n_designs": 5, "n_devices": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        make_edge_benchmark(**kwargs)


def test_bad_device_table_raises():
    table = make_device_population(2, random_state=0).devices.drop(columns="tdp_w")
    with pytest.raises(ValueError, match="tdp_w"):
        make_edge_benchmark(n_designs=5, devices=table)


# -------------------------------------------------------------------- truth
def test_simulated_truth_is_the_noise_free_benchmark(bench):
    devs = list(bench.latency.columns[:3])
    # Any design of the space, not only the benchmark's rows.
    designs = bench.space.sample(6, random_state=1)
    names = [devs[i % 3] for i in range(6)]
    truth = simulated_truth(bench, designs, names)
    sim = Bunch(devices=bench.devices.loc[devs], params=bench.device_params.loc[devs])
    clean = make_edge_benchmark(designs=designs, devices=sim, noise=0.0, accuracy_noise=0.0)
    rows, cols = np.arange(6), clean.latency.columns.get_indexer(names)
    np.testing.assert_allclose(truth["latency"], clean.latency.to_numpy()[rows, cols])
    np.testing.assert_allclose(truth["energy"], clean.energy.to_numpy()[rows, cols])
    np.testing.assert_allclose(truth["accuracy"], clean.accuracy)
    # The benchmark's measurements are the truth times 3 % log-normal noise.
    one = simulated_truth(bench, bench.designs, devs[0])
    ratio = np.log(bench.latency[devs[0]].to_numpy() / one["latency"])
    assert abs(ratio.mean()) < 0.01 and 0.02 < ratio.std() < 0.04


def test_simulated_truth_bad_input(bench):
    with pytest.raises(ValueError, match="not devices of bench"):
        simulated_truth(bench, bench.designs[:2], "nope")
    with pytest.raises(ValueError, match="one per design"):
        simulated_truth(bench, bench.designs[:2], list(bench.latency.columns[:3]))
    measured = Bunch(**{k: v for k, v in bench.items() if k != "device_params"})
    with pytest.raises(ValueError, match="device_params"):
        simulated_truth(measured, bench.designs[:2], bench.latency.columns[0])


# ------------------------------------------------------------- real devices
@pytest.mark.realdata
def test_simulates_the_real_device_table(data_home):
    from skedge.datasets import load_devices

    devices = load_devices(data_home)
    b = make_edge_benchmark("nb201", n_designs=50, devices=devices, random_state=0)
    assert list(b.latency.columns) == list(devices.index)
    assert np.isfinite(b.latency.to_numpy()).all()
    # Settings of one GPU at several batch sizes share the hidden factors.
    p = b.device_params
    assert p.loc["1080ti_1", "eff_dense"] == p.loc["1080ti_32", "eff_dense"]
    assert (b.latency["1080ti_256"] > b.latency["1080ti_1"]).mean() > 0.9


# --------------------------------------------------------------------- demo
def test_demo_command(capsys):
    assert main(["demo", "--n-designs", "50", "--n-devices", "8"]) == 0
    out = capsys.readouterr().out
    assert "Spearman" in out and "50 designs x 8 devices" in out


def test_demo_bad_space_is_an_error(capsys):
    assert main(["demo", "--space", "resnet", "--n-designs", "5", "--n-devices", "2"]) == 2
    assert "resnet" in capsys.readouterr().err
