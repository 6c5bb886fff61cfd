"""Device feature schema, device tables and the description of this machine."""

import json
import os

import numpy as np
import pandas as pd
import pytest

import skedge.devices
from skedge.datasets import load_devices, read_device_file
from skedge.devices import (
    DEVICE_FEATURES,
    DEVICE_KINDS,
    hardware_name,
    validate_device_table,
)
from skedge.measure import describe_local_device
from skedge.preprocessing import nearest_devices


def _row(device="dev_a", kind="desktop_gpu", **extra):
    row = {f: 1.0 for f in DEVICE_FEATURES}
    row["release_year"] = 2020.0
    row.update(device=device, kind=kind, **extra)
    return row


@pytest.mark.parametrize(
    "setting, hardware",
    [
        ("1080ti_1", "1080ti"),
        ("1080ti_32", "1080ti"),
        ("titanxp_256", "titanxp"),
        ("titan_xp_64", "titan_xp"),
        ("v100_128", "v100"),
        ("pixel3", "pixel3"),
        ("true_a76", "true_a76"),
        ("eagle_cpu_855", "eagle_cpu_855"),  # 855 is a chip name, not a batch size
        ("gold_6240", "gold_6240"),
        ("rice_pixel3", "rice_pixel3"),
    ],
)
def test_hardware_name(setting, hardware):
    assert hardware_name(setting) == hardware


# ------------------------------------------------------------------ validation
def test_validate_device_table_numeric_and_indexed():
    df = pd.DataFrame([_row("a", "phone_cpu"), _row("b", 8, peak_gflops="12.5")])
    out = validate_device_table(df)
    assert list(out.columns) == list(DEVICE_FEATURES)
    assert list(out.index) == ["a", "b"] and out.index.name == "device"
    assert (out.dtypes == np.float64).all()
    assert out.loc["a", "kind"] == DEVICE_KINDS.index("phone_cpu")
    assert out.loc["b", "kind"] == 8 and out.loc["b", "peak_gflops"] == 12.5
    # Extra columns are dropped; the input is not modified.
    df2 = pd.DataFrame([_row("a", "phone_cpu", note="x")])
    assert "note" not in validate_device_table(df2).columns
    assert df2.loc[0, "kind"] == "phone_cpu"


def test_validate_device_table_unknown_values_are_nan():
    df = pd.DataFrame([_row("a", "edge_gpu", tdp_w=None, mem_gb="")])
    out = validate_device_table(df)
    assert np.isnan(out.loc["a", "tdp_w"]) and np.isnan(out.loc["a", "mem_gb"])


def test_validate_device_table_missing_column():
    df = pd.DataFrame([_row()]).drop(columns=["clock_ghz", "tdp_w"])
    with pytest.raises(ValueError, match=r"my table lacks .*'clock_ghz', 'tdp_w'"):
        validate_device_table(df, source="my table")


def test_validate_device_table_unknown_kind():
    df = pd.DataFrame([_row("a", "quantum_cpu")])
    with pytest.raises(ValueError, match="unknown device kind 'quantum_cpu'"):
        validate_device_table(df)
    df = pd.DataFrame([_row("a", len(DEVICE_KINDS))])
    with pytest.raises(ValueError, match="'a' has an invalid kind code"):
        validate_device_table(df)
    df = pd.DataFrame([_row("a", 1.5)])
    with pytest.raises(ValueError, match="invalid kind code"):
        validate_device_table(df)


def test_validate_device_table_duplicate_and_inf():
    # The same device with the same features (a measurement file repeats it per design).
    table = validate_device_table(pd.DataFrame([_row("a"), _row("b"), _row("a")]))
    assert list(table.index) == ["a", "b"]
    df = pd.DataFrame([_row("a"), _row("b"), _row("a", peak_gflops=7.0)])
    with pytest.raises(ValueError, match=r"lists device 'a' twice with different peak_gflops "
                                         r"\(.*, 7\)"):
        validate_device_table(df)
    df = pd.DataFrame([_row("a", peak_gflops=np.inf)])
    with pytest.raises(ValueError, match="infinite"):
        validate_device_table(df)


# ------------------------------------------------------------------ files
def test_read_device_file_csv(tmp_path):
    path = tmp_path / "mine.csv"
    pd.DataFrame([_row("x", "board_cpu"), _row("y", "npu")]).to_csv(path, index=False)
    out = read_device_file(path)
    assert list(out.index) == ["x", "y"]
    assert out["kind"].tolist() == [DEVICE_KINDS.index("board_cpu"), DEVICE_KINDS.index("npu")]


def test_read_device_file_json_object_and_list(tmp_path):
    one = _row("rpi4", "board_cpu")
    del one["device"]
    path = tmp_path / "rpi4.json"
    path.write_text(json.dumps(one))
    out = read_device_file(path)
    assert list(out.index) == ["rpi4"]  # name from the file stem
    assert out.loc["rpi4", "kind"] == DEVICE_KINDS.index("board_cpu")

    path = tmp_path / "many.json"
    path.write_text(json.dumps([_row("a", "npu"), _row("b", "asic")]))
    out = read_device_file(path)
    assert list(out.index) == ["a", "b"]
    assert out.shape == (2, len(DEVICE_FEATURES))

    path = tmp_path / "bad.json"
    path.write_text(json.dumps([_row("a", "toaster")]))
    with pytest.raises(ValueError, match=r"bad\.json.*unknown device kind 'toaster'"):
        read_device_file(path)


# ------------------------------------------------------------------ this machine
def test_describe_local_device():
    row = describe_local_device(threads=2, batch_size=4, name="here")
    assert row.shape == (1, len(DEVICE_FEATURES))
    assert list(row.columns) == list(DEVICE_FEATURES) and list(row.index) == ["here"]
    assert (row.dtypes == np.float64).all()
    r = row.iloc[0]
    assert r["compute_units"] == 2 and r["batch_size"] == 4 and r["precision_bits"] == 32
    assert DEVICE_KINDS[int(r["kind"])] in ("desktop_cpu", "server_cpu", "board_cpu")
    assert np.isnan(r["clock_ghz"]) or 0.1 < r["clock_ghz"] < 10
    if np.isfinite(r["clock_ghz"]):
        assert r["peak_gflops"] > 0
        assert r["peak_gflops"] == pytest.approx(
            2 * r["clock_ghz"] * describe_local_device(threads=1)["peak_gflops"].iloc[0]
            / describe_local_device(threads=1)["clock_ghz"].iloc[0]
        )
    assert np.isnan(r["mem_gb"]) or r["mem_gb"] > 0.1
    assert np.isnan(r["on_chip_mb"]) or r["on_chip_mb"] > 0
    assert row.attrs["cpu_model"] and row.attrs["kind"] == DEVICE_KINDS[int(r["kind"])]
    # The row passes the schema check used for every device table.
    validate_device_table(row)


def test_describe_local_device_defaults():
    row = describe_local_device()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert row["compute_units"].iloc[0] == cores
    assert row.index[0].startswith("local_") and row.index[0].endswith(f"_t{cores}")


# ------------------------------------------------------------------ real data
def test_load_devices_real(data_home):
    dev = load_devices(data_home)
    assert dev.shape == (40, len(DEVICE_FEATURES))
    assert dev.index.is_unique and dev.index.name == "device"
    assert (dev.dtypes == np.float64).all()
    kinds = dev["kind"]
    assert kinds.notna().all() and kinds.isin(range(len(DEVICE_KINDS))).all()
    assert dev.loc["1080ti_1", "peak_gflops"] == pytest.approx(11339.8)
    assert dev.loc["1080ti_1", "kind"] == DEVICE_KINDS.index("desktop_gpu")
    assert dev.loc["titanxp_256", "batch_size"] == 256
    assert dev.loc["v100_1", "kind"] == DEVICE_KINDS.index("datacenter_gpu")
    # Settings of one hardware differ only in their batch size.
    same = dev.loc[["1080ti_1", "1080ti_32"]].drop(columns="batch_size")
    assert same.iloc[0].equals(same.iloc[1])
    # Physical values are positive where known.
    values = dev.drop(columns="kind").to_numpy()
    assert (values[np.isfinite(values)] > 0).all()


def test_load_devices_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="devices/devices.csv"):
        load_devices(tmp_path)


def _spec_table():
    rows = {
        "gpu_a": [8, 1, 32, 1.1e4, 484, 3584, 1.58, 2.75, 11, 250, 16, 2017],
        "gpu_b": [8, 1, 32, 1.3e4, 616, 4352, 1.55, 5.5, 11, 250, 12, 2018],
        "phone_a": [0, 1, 32, 80, 29.9, 4, 2.5, 2, 4, np.nan, 10, 2018],
        "cpu_a": [7, 1, 32, 704, 115, 10, 2.2, 13.75, np.nan, 85, 14, 2017],
    }
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(DEVICE_FEATURES))


def test_nearest_devices_prefers_the_same_kind_and_scale():
    known = _spec_table()
    new_gpu = [8, 1, 32, 1.2e4, 550, 3840, 1.58, 3, 12, 250, 16, 2017]
    assert nearest_devices(known, new_gpu, n_neighbors=2) == ["gpu_a", "gpu_b"]
    new_phone = known.loc["phone_a"].to_numpy().copy()
    new_phone[3] = np.nan  # an unknown value still finds its kind
    assert nearest_devices(known, new_phone, n_neighbors=1) == ["phone_a"]
    assert len(nearest_devices(known, new_gpu, n_neighbors=10)) == 4


def test_nearest_devices_bad_input():
    with pytest.raises(ValueError, match="expected 12"):
        nearest_devices(_spec_table(), [1.0, 2.0])
    with pytest.raises(ValueError, match="no known devices"):
        nearest_devices(_spec_table().iloc[:0], [8] * 12)


def test_moved_functions_left_the_schema_module():
    # The schema does not read files, compare devices nor read this machine (#13).
    for name in ("load_devices", "read_device_file", "nearest_devices", "describe_local_device"):
        assert not hasattr(skedge.devices, name), name
