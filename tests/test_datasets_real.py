"""Loaders of the real measured benchmarks (NB201, FBNet, OFA) and their pair tables."""

import json
import time

import numpy as np
import pandas as pd
import pytest

from skedge.datasets import (
    load_fbnet,
    load_nb201,
    load_ofa,
    load_reference_designs,
    to_pairs,
)
from skedge.devices import DEVICE_FEATURES
from skedge.spaces import FBNetSpace, NB201Space, OFASpace

ARCH0 = (
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|"
    "+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
)
LOADERS = {"nb201": load_nb201, "fbnet": load_fbnet, "ofa": load_ofa}
SHAPES = {"nb201": (15_625, 6, 30), "fbnet": (5_000, 22, 19), "ofa": (5_000, 46, 9)}
ID_NAMES = {"nb201": "arch_idx", "fbnet": "fbnet_id", "ofa": "ofa_id"}
JSON_KEYS = {"nb201": "nasbench201", "fbnet": "fbnet", "ofa": "ofa"}
CONTRACT = {
    "space", "designs", "design_ids", "accuracy", "latency", "energy", "devices",
    "reference_idx", "DESCR",
}


# ------------------------------------------------------------------ no data needed
@pytest.mark.parametrize("name", sorted(LOADERS))
def test_missing_data_message(tmp_path, name):
    with pytest.raises(FileNotFoundError) as exc:
        LOADERS[name](data_home=tmp_path)
    msg = str(exc.value)
    assert str(tmp_path) in msg and "data_home" in msg
    expected = {"nb201": "nb201/archs.csv", "fbnet": "fbnet/latency_help.csv",
                "ofa": "ofa/latency_help.csv"}[name]
    assert str(tmp_path / expected) in msg


def test_missing_data_message_names_env_var(tmp_path, monkeypatch):
    monkeypatch.setenv("SKEDGE_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="SKEDGE_DATA") as exc:
        load_nb201()
    assert str(tmp_path / "nowhere" / "nb201" / "archs.csv") in str(exc.value)
    assert "does not exist" in str(exc.value)


def _tiny_home(tmp_path, extra_device="mystery_npu"):
    """A synthetic 3-cell NB201 data home (no real numbers) for error-path tests."""
    space = NB201Space()
    X = np.array([[3] * 6, [0] * 6, [4, 2, 1, 2, 1, 1]])
    archs = pd.DataFrame(X, columns=space.choice_names)
    archs.insert(0, "arch_str", space.to_strings(X))
    archs.insert(0, "arch_idx", [2, 0, 1])
    for d in ("cifar10", "cifar100", "imagenet16"):
        archs[f"acc_{d}"] = [90.0, 10.0, 80.0]
    (tmp_path / "nb201").mkdir()
    (tmp_path / "devices").mkdir()
    archs.to_csv(tmp_path / "nb201" / "archs.csv", index=False)
    lat = pd.DataFrame({"arch_idx": [0, 1, 2], "dev_a": [1.0, 2.0, 3.0]})
    if extra_device:
        lat[extra_device] = [4.0, 5.0, 6.0]
    lat.to_csv(tmp_path / "nb201" / "latency_help.csv", index=False)
    pd.DataFrame({"arch_idx": [2], "dev_b": [7.0]}).to_csv(
        tmp_path / "nb201" / "latency_oneproxy.csv", index=False
    )
    row = {f: 1.0 for f in DEVICE_FEATURES} | {"release_year": 2020.0}
    pd.DataFrame([{"device": "dev_a", **row}, {"device": "dev_b", **row}]).to_csv(
        tmp_path / "devices" / "devices.csv", index=False
    )
    (tmp_path / "reference_archs.json").write_text(json.dumps({"nasbench201": [2, 0]}))
    return tmp_path


def test_unlisted_latency_column_is_named(tmp_path):
    home = _tiny_home(tmp_path)
    with pytest.raises(ValueError, match=r"\['mystery_npu'\] are not listed in devices/"):
        load_nb201(data_home=home)


def test_tiny_home_joins_and_orders(tmp_path):
    home = _tiny_home(tmp_path, extra_device=None)
    b = load_nb201(data_home=home, dataset="cifar100")
    np.testing.assert_array_equal(b.design_ids, [0, 1, 2])  # sorted by arch_idx
    np.testing.assert_array_equal(b.designs, [[0] * 6, [4, 2, 1, 2, 1, 1], [3] * 6])
    np.testing.assert_array_equal(b.accuracy, [10.0, 80.0, 90.0])
    assert list(b.latency.columns) == ["dev_a", "dev_b"]
    np.testing.assert_array_equal(b.latency["dev_b"].isna(), [True, True, False])
    np.testing.assert_array_equal(b.reference_idx, [2, 0])
    assert list(b.devices.index) == ["dev_a", "dev_b"]
    assert list(load_nb201(data_home=home, sources="oneproxy").latency.columns) == ["dev_b"]
    # A changed file is re-read (the cache is keyed on modification time and size).
    lat = pd.read_csv(home / "nb201" / "latency_help.csv")
    lat["dev_a"] = [10.0, 20.0, 30.0]
    lat.to_csv(home / "nb201" / "latency_help.csv", index=False)
    assert load_nb201(data_home=home).latency["dev_a"].tolist() == [10.0, 20.0, 30.0]


def test_tiny_home_bad_arch_str(tmp_path):
    home = _tiny_home(tmp_path, extra_device=None)
    archs = pd.read_csv(home / "nb201" / "archs.csv")
    archs.loc[0, "e0"] = 2
    archs.to_csv(home / "nb201" / "archs.csv", index=False)
    with pytest.raises(ValueError, match="arch_idx 2 has arch_str"):
        load_nb201(data_home=home)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"dataset": "mnist"}, "unknown NB201 dataset 'mnist'"),
        ({"sources": ()}, "non-empty subset"),
        ({"sources": ("help", "eagle")}, "non-empty subset"),
    ],
)
def test_nb201_argument_errors(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_nb201(data_home=tmp_path, **kwargs)


def test_reference_designs_of_unknown_space(tmp_path):
    with pytest.raises(ValueError, match="no reference designs"):
        load_reference_designs(OFASpace(quantize=True), data_home=tmp_path)


# ------------------------------------------------------------------ real data
@pytest.fixture(scope="module")
def benches(data_home):
    return {name: loader(data_home=data_home) for name, loader in LOADERS.items()}


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_bunch_contract_and_shapes(benches, name):
    b = benches[name]
    n, width, n_dev = SHAPES[name]
    assert set(b) == CONTRACT
    assert b.space == {"nb201": NB201Space(), "fbnet": FBNetSpace(), "ofa": OFASpace()}[name]
    assert b.designs.shape == (n, width) and b.designs.dtype == np.int64
    np.testing.assert_array_equal(b.space.validate(b.designs, canonicalize=True), b.designs)
    assert b.design_ids.shape == (n,) and b.design_ids.dtype == np.int64
    assert (np.diff(b.design_ids) > 0).all()
    assert b.latency.shape == (n, n_dev)
    assert b.latency.index.name == ID_NAMES[name]
    np.testing.assert_array_equal(b.latency.index, b.design_ids)
    assert (b.latency.dtypes == np.float64).all()
    values = b.latency.to_numpy()
    measured = values[~np.isnan(values)]
    assert measured.size > 0 and np.isfinite(measured).all() and (measured > 0).all()  # ms
    assert b.energy is None
    assert list(b.devices.index) == list(b.latency.columns)
    assert list(b.devices.columns) == list(DEVICE_FEATURES)
    assert b.reference_idx.shape == (10,) and b.reference_idx.dtype == np.int64
    assert isinstance(b.DESCR, str) and "licen" in b.DESCR.lower() and "HELP" in b.DESCR
    if name == "nb201":
        assert b.accuracy.shape == (n,) and np.isfinite(b.accuracy).all()
        assert 0 <= b.accuracy.min() and b.accuracy.max() <= 100
    else:
        assert b.accuracy is None


def test_nb201_known_values(benches, data_home):
    b = benches["nb201"]
    assert b.space.to_string(b.designs[0]) == ARCH0
    assert b.latency.loc[0, "1080ti_1"] == pytest.approx(10.7544)
    assert b.latency.loc[0, "pixel3"] == pytest.approx(3.60585)
    assert b.latency.loc[910, "eagle_cpu_855"] == pytest.approx(12.016)  # OneProxy
    assert b.latency.loc[910, "true_a76"] == pytest.approx(15.2742)
    assert b.accuracy[0] == pytest.approx(85.8633, abs=1e-4)
    assert load_nb201(dataset="cifar100", data_home=data_home).accuracy[0] == pytest.approx(
        52.9133, abs=1e-4
    )
    # OneProxy covers 1,999 cells, NaN elsewhere; HELP covers all.
    counts = b.latency.notna().sum()
    assert (counts[[c for c in b.latency.columns if c.startswith(("eagle_", "rice_", "true_"))]]
            == 1999).all()
    assert (counts[:19] == 15_625).all()
    # OneProxy's rice_pixel3 repeats HELP's pixel3.
    both = b.latency[["pixel3", "rice_pixel3"]].dropna()
    np.testing.assert_allclose(both["pixel3"], both["rice_pixel3"], rtol=1e-4)


def test_nb201_sources(data_home):
    help_only = load_nb201(sources=("help",), data_home=data_home)
    assert help_only.latency.shape == (15_625, 19)
    assert not help_only.latency.isna().any().any()
    proxy = load_nb201(sources="oneproxy", data_home=data_home)
    assert proxy.latency.shape == (15_625, 11)
    assert proxy.latency.notna().all(axis=1).sum() == 1999
    assert list(proxy.devices.index) == list(proxy.latency.columns)


def test_nb201_degenerate_cells(benches):
    b = benches["nb201"]
    deg = b.space.is_degenerate(b.designs)
    assert deg.sum() == 341
    assert "341 cells have no path" in b.DESCR
    assert (b.accuracy[deg] == 10).all()
    # Some of them run in ~0 ms on the Pixel 3 (nothing to compute).
    assert (b.latency.loc[deg, "pixel3"] < 0.5).sum() > 100
    assert (b.latency.loc[~deg, "pixel3"] > 0.5).all()


def test_fbnet_known_values(benches, data_home):
    b = benches["fbnet"]
    assert b.latency.loc[0, "1080ti_1"] == pytest.approx(10.6153)
    raw = pd.read_csv(data_home / "fbnet" / "latency_help.csv", nrows=3)
    assert b.space.to_strings(b.designs[:3]) == raw["arch_str"].tolist()
    assert b.space.to_string(b.designs[0]).split()[:2] == ["k5_e6", "skip"]


def test_ofa_known_values_and_conversion(benches, data_home):
    b = benches["ofa"]
    assert b.latency.loc[0, "2080ti_1"] == pytest.approx(12.0819)
    raw = pd.read_csv(data_home / "ofa" / "latency_help.csv", nrows=20)
    dicts = b.space.to_dicts(b.designs[:20])
    assert [d["r"] for d in dicts] == raw["r"].tolist()
    for s in range(5):
        assert [d[f"d{s}"] for d in dicts] == raw[f"d{s}"].tolist()
    # Active blocks keep the file's values; inactive ones are canonical option 0.
    active = b.space.active_blocks(b.designs[:20])
    for key, cols in (("ks", slice(0, 20)), ("e", slice(20, 40))):
        values = np.asarray(b.space.choices[cols.start].options)[b.designs[:20, cols]]
        in_file = raw[[f"{key}{i}" for i in range(20)]].to_numpy()
        np.testing.assert_array_equal(values[active], in_file[active])
        assert (b.designs[:20, cols][~active] == 0).all()
    assert "No two ofa_id denote the same canonical network" in b.DESCR
    assert len(np.unique(b.designs, axis=0)) == 5000


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_reference_idx_points_at_reference_ids(benches, data_home, name):
    b = benches[name]
    ids = json.loads((data_home / "reference_archs.json").read_text())[JSON_KEYS[name]]
    np.testing.assert_array_equal(b.design_ids[b.reference_idx], ids)
    designs, ref_ids = load_reference_designs(name, data_home=data_home, return_ids=True)
    np.testing.assert_array_equal(ref_ids, ids)
    np.testing.assert_array_equal(designs, b.designs[b.reference_idx])


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_to_pairs_device_subset(benches, name):
    b = benches[name]
    devs = list(b.latency.columns[:2])
    n, width, _ = SHAPES[name]
    X, y, groups = to_pairs(b, devices=devs)
    assert X.shape == (2 * n, width + len(DEVICE_FEATURES)) and y.shape == groups.shape == (2 * n,)
    assert sorted(set(groups)) == sorted(devs)
    first = groups == devs[0]
    np.testing.assert_array_equal(X[first, :width], b.designs)
    np.testing.assert_allclose(y[first], b.latency[devs[0]])
    np.testing.assert_allclose(X[first, width:], np.tile(b.devices.loc[devs[0]], (n, 1)))
    Xf, _, _ = to_pairs(b, devices=devs, as_frame=True)
    assert list(Xf.columns[:width]) == b.space.choice_names
    with pytest.raises(ValueError, match="unknown device 'no_such_device'"):
        to_pairs(b, devices=["no_such_device"])
    with pytest.raises(ValueError, match="empty"):
        to_pairs(b, devices=[])


def test_to_pairs_drops_unmeasured(benches):
    b = benches["nb201"]
    _X, y, groups = to_pairs(b, devices=["1080ti_1", "eagle_gtx"])
    assert (groups == "eagle_gtx").sum() == 1999 and (groups == "1080ti_1").sum() == 15_625
    assert np.isfinite(y).all()
    _, y_all, _ = to_pairs(b, devices=["eagle_gtx"], dropna=False)
    assert len(y_all) == 15_625 and np.isnan(y_all).sum() == 15_625 - 1999


def test_loaders_return_fresh_copies(data_home):
    a = load_nb201(data_home=data_home)
    a.designs[:] = 0
    a.latency.iloc[:, :] = -1.0
    a.accuracy[:] = 0
    a.devices.iloc[:, :] = 0
    b = load_nb201(data_home=data_home)
    assert b.space.to_string(b.designs[0]) == ARCH0
    assert b.latency.loc[0, "1080ti_1"] == pytest.approx(10.7544)
    assert b.accuracy[0] == pytest.approx(85.8633, abs=1e-4)
    assert b.devices.loc["1080ti_1", "peak_gflops"] == pytest.approx(11339.8)
    o = load_ofa(data_home=data_home)
    o.latency.iloc[0, 0] = -1.0
    assert load_ofa(data_home=data_home).latency.iloc[0, 0] == pytest.approx(12.0819)


def test_nb201_loads_fast(data_home):
    load_nb201(data_home=data_home)  # warm the cache
    start = time.perf_counter()
    load_nb201(data_home=data_home)
    assert time.perf_counter() - start < 2.0
