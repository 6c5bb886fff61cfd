"""Profiling any device: GPU settings, rounds, energy counters, ONNX export and imported timings.

CUDA itself is absent here: the GPU paths are checked up to the point where a
GPU is needed (clear errors before measuring, the feature row from mocked
device properties and a mocked NVML). ``benchmarks/gpu_profile.py`` runs them
for real on a machine with an NVIDIA GPU.
"""

import json
import sys
import types

import numpy as np
import pandas as pd
import pytest
import torch

import skedge.measure._run
import skedge.models
from skedge import cli
from skedge.datasets import load_measurements, to_pairs
from skedge.measure import (
    NvmlCounter,
    RaplCounter,
    describe_cuda_device,
    export_onnx,
    idle_baseline,
    import_timings,
    measure,
    open_energy_counter,
    read_manifest,
    read_measurement_file,
    repeatability,
    time_onnx_model,
)
from skedge.spaces import NB201Space

TINY = [[1] * 6, [0] * 6, [4, 0, 0, 1, 0, 0]]
FAST = {"warmup": 0, "repeats": 2, "progress": False}


@pytest.fixture(autouse=True)
def no_data_home(monkeypatch, tmp_path):
    monkeypatch.setenv("SKEDGE_DATA", str(tmp_path / "no_data_here"))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    root = tmp_path_factory.mktemp("export")
    folder = root / "nb201_onnx"
    # No data home (module scope: before the autouse fixture), so no arch_idx.
    export_onnx("nb201", folder, designs=TINY, data_home=root / "no_data_here")
    return folder


# ---------------------------------------------------------------- file format
def test_torn_middle_row_is_an_error_naming_the_line(tmp_path):
    out = tmp_path / "m.csv"
    measure("nb201", out, designs=TINY, device_name="a", **FAST)
    lines = out.read_text().splitlines(keepends=True)
    lines[2] = lines[2][: len(lines[2]) // 3] + "\n"  # a row cut in the middle of the file
    out.write_text("".join(lines))
    with pytest.raises(ValueError, match=r"m\.csv, line 3: .* torn"):
        read_measurement_file(out)
    with pytest.raises(ValueError, match="line 3"):
        measure("nb201", out, designs=TINY, device_name="a", resume=True, **FAST)
    with pytest.raises(ValueError, match="line 3"):
        load_measurements(out)


def test_file_of_an_older_skedge_is_read_and_resumed(tmp_path):
    from skedge.datasets._measurement_format import _core_columns

    out = tmp_path / "old.csv"
    df = measure("nb201", out, designs=TINY[:2], device_name="a", **FAST)
    df[_core_columns("nb201")].to_csv(out, index=False)  # the format before profiling
    old = read_measurement_file(out)
    assert old["backend"].eq("torch").all() and old["round"].eq(1).all()
    df = measure("nb201", out, designs=TINY, device_name="a", resume=True, **FAST)
    assert len(df) == 3
    with pytest.raises(ValueError, match="older skedge"):
        measure("nb201", out, designs=TINY, device_name="b", resume=True, rounds=2, **FAST)


# --------------------------------------------------------- rounds and settings
def test_rounds_are_rows_resumed_and_summarized(tmp_path):
    out = tmp_path / "m.csv"
    measure("nb201", out, designs=TINY[:2], device_name="a", rounds=2, repeats=3, warmup=0,
            progress=False)
    df = measure("nb201", out, designs=TINY, device_name="a", rounds=2, resume=True, **FAST)
    assert len(df) == 6 and sorted(df["round"].tolist()) == [1, 1, 1, 2, 2, 2]
    assert not df.duplicated(["design_str", "round"]).any()
    # Rows of round 1 come first: the second pass starts after the first.
    assert df["round"].tolist()[:2] == [1, 1]
    rep = repeatability(df)
    assert rep.loc["a", "n_designs"] == 3 and -1 <= rep.loc["a", "round_spearman"] <= 1
    assert rep.loc["a", "round_rel_diff"] >= 0 and rep.loc["a", "median_rel_iqr"] >= 0
    bench = load_measurements(out)
    assert bench.latency.shape == (3, 1) and bench.energy is None
    expected = df.groupby("design_str", sort=False)["latency_ms"].median().to_numpy()
    np.testing.assert_allclose(bench.latency["a"].to_numpy(), expected)
    # Same name with another backend or target: refused.
    with pytest.raises(ValueError, match="repeats|cuda_graphs|GPU"):
        measure("nb201", out, designs=TINY, device_name="a", cuda_graphs=True, resume=True,
                **FAST)


def test_cuda_without_gpu_fails_before_measuring(tmp_path, monkeypatch, forbid_measuring,
                                                  capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "m.csv"
    for kwargs in ({"device": "cuda"}, {"device": "cuda:1"}):
        with pytest.raises(ValueError, match="no CUDA GPU"):
            measure("nb201", out, designs=TINY, **kwargs, **FAST)
    with pytest.raises(ValueError, match="'cpu', 'cuda' or 'cuda:N'"):
        measure("nb201", out, designs=TINY, device="tpu", **FAST)
    with pytest.raises(ValueError, match="cuda_graphs needs a CUDA device"):
        measure("nb201", out, designs=TINY, cuda_graphs=True, **FAST)
    with pytest.raises(ValueError, match="rounds"):
        measure("nb201", out, designs=TINY, rounds=0, **FAST)
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("skedge._cli.measure",))
    assert cli.main(["measure", "--space", "nb201", "--n", "2", "--out", str(out),
                     "--device", "cuda"]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err
    assert not out.exists() and forbid_measuring == []


# ------------------------------------------------------------------ the GPU row
def _fake_nvml(energy=None, supported=True):
    class NVMLError(Exception):
        pass

    state = {"mj": 1000}

    def total_energy(handle):
        if not supported:
            raise NVMLError("Not Supported")
        state["mj"] += 7 if energy is None else energy
        return state["mj"]

    return types.SimpleNamespace(
        NVMLError=NVMLError, NVML_CLOCK_SM=1, NVML_CLOCK_MEM=2,
        nvmlInit=lambda: None,
        nvmlDeviceGetHandleByIndex=lambda i: ("gpu", i),
        nvmlDeviceGetHandleByUUID=lambda u: ("gpu", u),
        nvmlDeviceGetTotalEnergyConsumption=total_energy,
        nvmlDeviceGetMaxClockInfo=lambda h, which: 1980 if which == 1 else 2619,
        nvmlDeviceGetMemoryBusWidth=lambda h: 5120,
        nvmlDeviceGetPowerManagementLimit=lambda h: 700_000,
        nvmlSystemGetDriverVersion=lambda: "570.86.15",
    )


def test_nvml_counter_against_a_mocked_module(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml(energy=5))
    counter = NvmlCounter(0)
    assert counter.name == "nvml:0" and counter.unit_mj == 1.0
    first = counter.read_mj()
    assert counter.read_mj() - first == 5
    assert open_energy_counter("cuda:0").name == "nvml:0"
    power, resolution, _ = idle_baseline(counter, 0.02, poll_s=0.001)
    assert resolution == 5 and power > 0
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml(supported=False))
    with pytest.raises(ValueError, match="Volta or newer"):
        NvmlCounter(0)
    monkeypatch.setitem(sys.modules, "pynvml", None)  # not installed
    with pytest.raises(ValueError, match="pip install nvidia-ml-py"):
        NvmlCounter(0)


def test_gpu_feature_row_from_device_properties(monkeypatch):
    props = types.SimpleNamespace(name="NVIDIA H100 80GB HBM3", major=9, minor=0,
                                  multi_processor_count=132, total_memory=80 * 2**30,
                                  L2_cache_size=50 * 2**20, is_integrated=False, uuid=None)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: props)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # NVML by index
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml())
    features, context = describe_cuda_device(0, batch_size=64)
    assert features["kind"] == "datacenter_gpu" and features["compute_units"] == 132
    assert features["clock_ghz"] == pytest.approx(1.98)
    assert features["peak_gflops"] == pytest.approx(132 * 128 * 2 * 1.98)
    assert features["mem_bandwidth_gbs"] == pytest.approx(2619 * 2 * 5120 / 8 / 1e3)
    assert features["tdp_w"] == 700 and features["on_chip_mb"] == 50
    assert features["batch_size"] == 64 and features["mem_gb"] == 80
    assert context["gpu_name"] == props.name and context["driver_version"] == "570.86.15"
    # Without NVML the row is still written, clocks unknown.
    monkeypatch.setitem(sys.modules, "pynvml", None)
    props.name, props.is_integrated = "Orin", True
    features, context = describe_cuda_device(0)
    assert features["kind"] == "edge_gpu" and np.isnan(features["clock_ghz"])
    assert context["driver_version"] == ""


# ----------------------------------------------------------------------- RAPL
def _powercap(root, zones):
    for name, (uj, max_uj) in zones.items():
        zone = root / name
        zone.mkdir(parents=True)
        label = "package-" + name.split(":")[1] if name.count(":") == 1 else "core"
        (zone / "name").write_text(label + "\n")
        (zone / "energy_uj").write_text(f"{uj}\n")
        (zone / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return root


def test_rapl_counter_sums_packages_and_handles_wraparound(tmp_path):
    root = _powercap(tmp_path / "powercap", {"intel-rapl:0": (1000, 10_000),
                                             "intel-rapl:1": (50, 10_000),
                                             "intel-rapl:0:0": (7, 10_000)})
    counter = RaplCounter(root)
    assert counter.name == "rapl:package-0+package-1"
    (root / "intel-rapl:0" / "energy_uj").write_text("9000\n")
    (root / "intel-rapl:1" / "energy_uj").write_text("1050\n")
    assert counter.read_mj() == pytest.approx((8000 + 1000) / 1000)
    # Package 0 wraps: 9000 -> 10000 (max) -> 0 -> 500.
    (root / "intel-rapl:0" / "energy_uj").write_text("500\n")
    assert counter.read_mj() == pytest.approx((8000 + 1000 + 1500) / 1000)
    with pytest.raises(ValueError, match="no RAPL package counter"):
        RaplCounter(tmp_path / "empty")


def test_energy_without_a_counter_fails_before_measuring(tmp_path, forbid_measuring):
    out = tmp_path / "m.csv"
    with pytest.raises(ValueError, match="no RAPL package counter"):
        measure("nb201", out, designs=TINY, energy=True, rapl_root=tmp_path / "none", **FAST)
    assert not out.exists() and forbid_measuring == []


def test_energy_per_inference_is_recorded_and_loaded(tmp_path, monkeypatch):
    class Clockwork:
        """A counter that gains 3 mJ per ms, like a 3 W device."""

        name, unit_mj = "fake:0", 0.001

        def __init__(self):
            import time

            self._time = time.perf_counter

        def read_mj(self):
            return round(3.0 * self._time() * 1e3, 3)

    monkeypatch.setattr(skedge.measure._run, "open_energy_counter",
                        lambda target, rapl_root=None: Clockwork())
    out = tmp_path / "e.csv"
    df = measure("nb201", out, designs=TINY, device_name="e", energy=True,
                 energy_seconds=0.02, idle_seconds=0.02, **FAST)
    assert (df["energy_counter"] == "fake:0").all()
    assert df["idle_power_w"].between(2.5, 3.5).all()
    assert (df["energy_runs"] >= 1).all() and (df["energy_resolution_mj"] > 0).all()
    # Energy per inference is about power x latency (loose: this machine is shared).
    assert (df["energy_mj"] > 0).all()
    bench = load_measurements(out)
    assert bench.energy.shape == bench.latency.shape == (3, 1)
    np.testing.assert_allclose(bench.energy["e"].to_numpy(), df["energy_mj"].to_numpy())
    _, y, _ = to_pairs(bench, target="energy")
    assert len(y) == 3 and (y > 0).all()


# ------------------------------------------------------------------- ONNX
def test_export_writes_models_manifest_and_metadata(exported):
    import onnx
    import onnxruntime as ort

    manifest = read_manifest(exported, space="nb201")
    assert manifest["model_id"].tolist() == ["nb201_00000", "nb201_00001", "nb201_00002"]
    assert manifest["batch_size"].eq(1).all() and manifest["design_id"].isna().all()
    assert manifest[[f"e{i}" for i in range(6)]].to_numpy().tolist() == TINY
    proto = onnx.load(exported / "nb201_00002.onnx")
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["skedge_space"] == "nb201" and props["skedge_model_id"] == "nb201_00002"
    # The exported network computes what the torch network computes.
    model = skedge.models.build_model("nb201", TINY[2])
    x = torch.randn(1, *model.input_shape, generator=torch.Generator().manual_seed(0))
    sess = ort.InferenceSession(str(exported / "nb201_00002.onnx"),
                                providers=["CPUExecutionProvider"])
    with torch.no_grad():
        np.testing.assert_allclose(sess.run(None, {"input": x.numpy()})[0], model(x).numpy(),
                                   rtol=1e-4, atol=1e-5)
    assert time_onnx_model(exported / "nb201_00000.onnx", warmup=0, repeats=2).shape == (2,)
    with pytest.raises(ValueError, match="already exists"):
        export_onnx("nb201", exported, designs=TINY)


def test_onnxruntime_backend_resumes_and_refuses_other_spaces(exported, tmp_path,
                                                              forbid_measuring):
    import onnx

    out = tmp_path / "ort.csv"
    df = measure("nb201", out, backend="onnxruntime", models=exported, device_name="ort",
                 **FAST)
    assert (df["backend"] == "onnxruntime").all() and (df["status"] == "ok").all()
    assert df["backend_version"].notna().all() and len(df) == 3
    # A run killed after two rows: resume measures the third only.
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:3]) + lines[3][:10])
    df = measure("nb201", out, backend="onnxruntime", models=exported, device_name="ort",
                 resume=True, **FAST)
    assert len(df) == 3 and df["design_str"].is_unique
    assert forbid_measuring == []  # onnxruntime never builds a torch network

    with pytest.raises(ValueError, match="not 'fbnet'"):
        measure("fbnet", tmp_path / "x.csv", backend="onnxruntime", models=exported, **FAST)
    with pytest.raises(ValueError, match="designs are the exported ones"):
        measure("nb201", tmp_path / "x.csv", backend="onnxruntime", models=exported,
                designs=TINY, **FAST)
    with pytest.raises(ValueError, match="batch size 1, not 8"):
        measure("nb201", tmp_path / "x.csv", backend="onnxruntime", models=exported,
                batch_size=8, **FAST)
    # One file replaced by a model of another space: named, before any timing.
    bad = tmp_path / "bad_export"
    bad.mkdir()
    for f in exported.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    proto = onnx.load(bad / "nb201_00001.onnx")
    onnx.helper.set_model_props(proto, {"skedge_space": "fbnet", "skedge_design": "x"})
    onnx.save(proto, bad / "nb201_00001.onnx")
    with pytest.raises(ValueError, match=r"nb201_00001\.onnx is a model of space 'fbnet'"):
        measure("nb201", tmp_path / "y.csv", backend="onnxruntime", models=bad, **FAST)
    (bad / "nb201_00001.onnx").write_bytes((exported / "nb201_00001.onnx").read_bytes())
    (bad / "nb201_00002.onnx").unlink()
    with pytest.raises(FileNotFoundError, match=r"nb201_00002\.onnx"):
        read_manifest(bad)
    assert not (tmp_path / "y.csv").exists() and not (tmp_path / "x.csv").exists()


def test_import_timings_round_trip_and_bad_ids(exported, tmp_path):
    features = tmp_path / "phone.json"
    features.write_text(json.dumps({"kind": "npu", "batch_size": 1,
                                    "precision_bits": 8, "peak_gflops": 4000,
                                    "mem_bandwidth_gbs": 50, "compute_units": 1,
                                    "clock_ghz": 1.0, "on_chip_mb": 8, "mem_gb": 8,
                                    "tdp_w": None, "process_nm": 4, "release_year": 2023}))
    timings = tmp_path / "phone.csv"
    pd.DataFrame({"file": ["nb201_00000.onnx", "/sdcard/nb201_00002.onnx"],
                  "latency_ms": [0.8, 1.9], "latency_std_ms": [0.01, 0.02]}).to_csv(timings,
                                                                                     index=False)
    out = tmp_path / "imported.csv"
    df = import_timings(exported, timings, out, device_name="npu1", device_features=features,
                        progress=False)
    assert df["latency_ms"].tolist() == [0.8, 1.9] and (df["backend"] == "external").all()
    assert df["design_str"].tolist() == read_manifest(exported)["design_str"][[0, 2]].tolist()
    bench = load_measurements(out)
    assert bench.devices.loc["npu1", "peak_gflops"] == 4000 and bench.latency.shape == (2, 1)

    # Unknown ids: an error naming the file and the id, nothing written.
    before = out.read_bytes()
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"model_id": ["nb201_00001", "nb201_00099"], "latency_ms": [1, 2]}).to_csv(
        bad, index=False)
    with pytest.raises(ValueError, match=r"bad\.csv: model_id \['nb201_00099'\]"):
        import_timings(exported, bad, out, device_name="npu1", resume=True, progress=False)
    nokey = tmp_path / "nokey.csv"
    pd.DataFrame({"name": ["a"], "latency_ms": [1]}).to_csv(nokey, index=False)
    with pytest.raises(ValueError, match="key column"):
        import_timings(exported, nokey, out, device_name="npu1", resume=True, progress=False)
    assert out.read_bytes() == before
    # Resume adds the missing model only; a failed (empty) latency is recorded as failed.
    more = tmp_path / "more.csv"
    pd.DataFrame({"model_id": ["nb201_00000", "nb201_00001"], "latency_ms": [0.8, None]}
                 ).to_csv(more, index=False)
    df = import_timings(exported, more, out, device_name="npu1", resume=True, progress=False)
    assert df["status"].tolist() == ["ok", "ok", "failed"]


def test_cli_export_measure_import(exported, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("skedge._cli.measure",))
    folder = tmp_path / "cli_export"
    designs = tmp_path / "designs.txt"
    designs.write_text("\n".join(NB201Space().to_strings(TINY[:2])) + "\n")
    assert cli.main(["export", "--space", "nb201", "--designs", str(designs), "--format",
                     "onnx", "--out", str(folder)]) == 0
    assert "wrote 2 ONNX models" in capsys.readouterr().out
    out = tmp_path / "ort.csv"
    assert cli.main(["measure", "--space", "nb201", "--backend", "onnxruntime", "--models",
                     str(folder), "--out", str(out), "--warmup", "0", "--repeats", "2",
                     "--rounds", "2", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "rounds 1 vs 2: Spearman" in printed and "4 ok" in printed
    timings = tmp_path / "t.csv"
    pd.DataFrame({"model_id": ["nb201_00007"], "latency_ms": [1.0]}).to_csv(timings,
                                                                           index=False)
    assert cli.main(["import-timings", "--models", str(folder), "--timings", str(timings),
                     "--device-name", "x", "--out", str(tmp_path / "i.csv")]) == 2
    assert "nb201_00007" in capsys.readouterr().err
    assert cli.main(["export", "--space", "nb201", "--n", "2", "--out", str(folder)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_import_timings_keyed_by_benchmark_id(exported, tmp_path):
    folder = tmp_path / "with_ids"
    folder.mkdir()
    manifest = pd.read_csv(exported / "manifest.csv")
    manifest.assign(design_id=[17, 4242, 9]).to_csv(folder / "manifest.csv", index=False)
    timings = tmp_path / "t.csv"
    pd.DataFrame({"design_id": [4242, 9], "latency_ms": [3.0, 2.0],
                  "energy_mj": [1.5, 1.0]}).to_csv(timings, index=False)
    df = import_timings(folder, timings, tmp_path / "o.csv", device_name="x", progress=False)
    assert df["design_id"].tolist() == [4242, 9] and df["energy_mj"].tolist() == [1.5, 1.0]
    assert load_measurements(tmp_path / "o.csv").energy["x"].tolist() == [1.5, 1.0]
