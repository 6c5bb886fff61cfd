"""`skedge run` and `skedge apply`, in-process through skedge.cli.main (tiny --fast sizes)."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from skedge.cli import main
from skedge.devices import DEVICE_FEATURES
from skedge.persistence import load_model, load_models
from skedge.spaces import get_space
from skedge.workflow import design_summary

SPACE = get_space("ofa-quant")


@pytest.fixture(scope="module")
def fast_run(tmp_path_factory, cli):
    out = tmp_path_factory.mktemp("job") / "models"
    rc, stdout, stderr = cli(["run", "--fast", "--out", str(out), "--random-state", "3"])
    return out, rc, stdout, stderr


def _phone(name="my_phone", **over):
    row = {"device": name, "kind": "phone_cpu", "batch_size": 1, "precision_bits": 8,
           "peak_gflops": 300.0, "mem_bandwidth_gbs": 30.0, "compute_units": 4,
           "clock_ghz": 2.8, "on_chip_mb": 4.0, "mem_gb": 8, "tdp_w": None,
           "process_nm": 7, "release_year": 2020}
    row.update(over)
    return row


# ------------------------------------------------------------------------ run
def test_run_fast_prints_table_and_writes_models(fast_run):
    out, rc, stdout, stderr = fast_run
    assert rc == 0, stderr
    for step in ("[1/5]", "[2/5]", "[3/5]", "[4/5]", "[5/5]"):
        assert step in stdout
    # The optimizer's fit, the long stage, reports its own stages as they end.
    fit = stdout[stdout.index("[3/5]"):stdout.index("[4/5]")].splitlines()
    assert fit[0].endswith("...") and fit[-1].strip().startswith("done in")
    for detail in ("network 1/", "distillation rows labelled", "round 2:", "student 2/2 trained"):
        assert any(line.startswith("      ") and detail in line for line in fit), detail
    assert not any("[AmortizedDesignOptimizer]" in line for line in fit)
    for column in ("method", "design", "acc %", "lat ms", "en mJ", "gap", "time",
                   "true acc %", "true lat ms", "true en mJ"):
        assert column in stdout
    assert "optimizer" in stdout and "search" in stdout
    assert "Time per (device, λ)" in stdout and "batched call" in stdout
    assert "In truth (simulated metrics): the optimizer's design is better on" in stdout
    assert "Zero-shot vs 10-shot designs" in stdout and "10 shots vs none" in stdout
    shots = pd.read_csv(out / "shots.csv")
    assert sorted(shots["shots"].unique()) == [0, 10]
    assert {"true_accuracy", "true_latency_ms", "true_energy_mJ", "true_objective"} <= set(shots)
    for name in ("accuracy", "latency", "energy", "optimizer"):  # the safe format: no pickle
        for part in ("model.json", "arrays.safetensors"):
            assert (out / name / part).is_file(), (name, part)
    assert not list(out.glob("*.joblib"))
    for name in ("manifest.json", "results.csv", "shots.csv"):
        assert (out / name).is_file(), name
    assert "Saved to" in stdout and "accuracy/, latency/, energy/, optimizer/, manifest.json" in stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format_version"] == 2 and manifest["model_format"] == "safe"
    assert manifest["files"] == {k: k for k in ("accuracy", "latency", "energy", "optimizer")}
    assert manifest["space"] == "ofa-quant"
    assert manifest["device_columns"] == list(DEVICE_FEATURES)
    assert manifest["lambda_columns"] == ["lambda_latency", "lambda_energy"]
    assert manifest["energy"] is True
    assert {"skedge", "scikit-learn", "torch"} <= set(manifest["versions"])
    assert len(manifest["test_devices"]) == 2
    assert not set(manifest["test_devices"]) & set(manifest["train_devices"])
    assert manifest["created"][:4].isdigit()
    pngs = sorted(p.name for p in out.glob("pareto_*.png"))
    assert pngs == sorted(f"pareto_{d}.png" for d in manifest["test_devices"])


def test_run_results_table_is_consistent(fast_run):
    out = fast_run[0]
    res = pd.read_csv(out / "results.csv")
    manifest = json.loads((out / "manifest.json").read_text())
    # 2 unseen devices x 2 λ x (optimizer, search)
    assert len(res) == 8
    assert set(res["device"]) == set(manifest["test_devices"])
    assert set(res["method"]) == {"optimizer", "search (evolution)"}
    opt = res[res["method"] == "optimizer"].reset_index(drop=True)
    srch = res[res["method"] != "optimizer"].reset_index(drop=True)
    np.testing.assert_allclose(opt["gap"], opt["objective"] - srch["objective"], atol=1e-9)
    for col in ("accuracy", "latency_ms", "energy_mJ", "true_accuracy", "true_latency_ms",
                "true_energy_mJ"):
        assert np.isfinite(res[col]).all(), col
    assert (res["true_latency_ms"] > 0).all()
    # The true objective, normalized per device like the predicted one, and its gap.
    assert np.isfinite(res["true_objective"]).all()
    np.testing.assert_allclose(opt["true_gap"], opt["true_objective"] - srch["true_objective"],
                               atol=1e-12)
    assert srch["true_gap"].isna().all()
    # Accuracy alone bounds it from below; the λ terms are non-negative.
    assert (res["true_objective"] >= -res["true_accuracy"] / 100 - 1e-12).all()
    # Optimizer answers are timed per row and far below a search's seconds.
    assert opt["seconds"].median() < srch["seconds"].median()
    SPACE.from_strings(res["design"])  # full strings round-trip


def test_saved_optimizer_loads_and_predicts_identically(fast_run):
    out = fast_run[0]
    res = pd.read_csv(out / "results.csv")
    opt_rows = res[res["method"] == "optimizer"]
    models = load_models(out)
    opt = models.optimizer
    assert opt is not None and models.energy is not None
    from skedge.datasets import make_edge_benchmark

    # The fast run's benchmark (same seed and sizes) gives the unseen devices' features.
    bench = make_edge_benchmark("ofa-quant", n_designs=240, n_devices=12, random_state=3)
    D = bench.devices.loc[opt_rows["device"], list(DEVICE_FEATURES)].to_numpy()
    X = np.column_stack([D, opt_rows["lambda_latency"], opt_rows["lambda_energy"]])
    designs = opt.predict(X)
    assert SPACE.to_strings(designs) == list(opt_rows["design"])
    m = opt.objective_.metrics(designs, D)
    np.testing.assert_allclose(m["accuracy"], opt_rows["accuracy"], rtol=1e-5)
    np.testing.assert_allclose(m["latency"], opt_rows["latency_ms"], rtol=1e-5)
    # Loaded separately, the predictors agree with the optimizer's copies.
    np.testing.assert_allclose(models.accuracy.predict(designs), m["accuracy"], rtol=1e-6)
    # A second load predicts the same designs (no state drifts on load).
    again = load_model(out / "optimizer")
    np.testing.assert_array_equal(again.predict(X), designs)


# ---------------------------------------------------------------------- apply
def test_apply_json_device(fast_run, tmp_path, capsys):
    out = fast_run[0]
    dev = tmp_path / "my_phone.json"
    dev.write_text(json.dumps(_phone()))
    csv = tmp_path / "designs.csv"
    rc = main(["apply", "--models", str(out), "--device", str(dev), "--lambdas", "0.01,0.1",
               "--out", str(csv)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "my_phone (phone_cpu)" in captured.out
    frame = pd.read_csv(csv)
    assert list(frame["device"]) == ["my_phone", "my_phone"]
    assert list(frame["lambda_latency"]) == [0.01, 0.1]
    assert (frame["lambda_energy"] == json.loads((out / "manifest.json").read_text())[
        "lambda_energy"]).all()
    designs = SPACE.from_strings(frame["design"])
    opt = load_models(out).optimizer
    assert opt.verbose == 0  # the run's progress lines are not saved into the model
    d = pd.DataFrame([_phone()]).drop(columns="device")
    d["kind"] = 0.0  # phone_cpu
    d = d[list(DEVICE_FEATURES)].astype(float).to_numpy()
    m = opt.objective_.metrics(designs, d)
    np.testing.assert_allclose(m["accuracy"], frame["accuracy"], rtol=1e-5)
    np.testing.assert_allclose(m["energy"], frame["energy_mJ"], rtol=1e-5)


def test_apply_csv_devices_front_and_latency_budget(fast_run, tmp_path, capsys):
    out = fast_run[0]
    rows = pd.DataFrame([_phone("phone_a"), _phone("edge_b", kind=5, peak_gflops=1300.0,
                                                   precision_bits=16, tdp_w=15.0)])
    dev = tmp_path / "devices.csv"
    rows.to_csv(dev, index=False)
    csv, front = tmp_path / "designs.csv", tmp_path / "front.csv"
    rc = main(["apply", "--models", str(out), "--device", str(dev), "--out", str(csv),
               "--front", str(front)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    frame = pd.read_csv(csv)
    assert list(frame["device"].unique()) == ["phone_a", "edge_b"]
    assert len(frame) == 2 * 2  # the run's two λ per device
    fr = pd.read_csv(front)
    assert set(fr["device"]) == {"phone_a", "edge_b"}
    for _, block in fr.groupby("device"):
        assert block["latency_ms"].is_monotonic_increasing
    # A budget at the optimizer's own predicted latency is always met.
    budget = float(frame["latency_ms"].max()) * 1.01
    single = tmp_path / "phone.csv"
    rows.iloc[:1].to_csv(single, index=False)
    rc = main(["apply", "--models", str(out), "--device", str(single), "--out", str(csv),
               "--max-latency", f"{budget}", "--quiet"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "most accurate with latency <=" in captured.out
    best = pd.read_csv(csv).dropna(subset=["budget"])
    assert len(best) == 1 and best["latency_ms"].iloc[0] <= budget


# --------------------------------------------------------------------- errors
def test_apply_errors_exit_2(fast_run, tmp_path, capsys):
    out = fast_run[0]
    good = tmp_path / "dev.json"
    good.write_text(json.dumps(_phone()))

    def fails(argv, *needles):
        rc = main(argv)
        err = capsys.readouterr().err
        assert rc == 2, err
        for needle in needles:
            assert needle in err, err

    fails(["apply", "--models", str(tmp_path / "nope"), "--device", str(good)],
          "does not exist", "skedge run")
    partial = tmp_path / "partial"
    shutil.copytree(out, partial)
    (partial / "optimizer" / "arrays.safetensors").unlink()
    fails(["apply", "--models", str(partial), "--device", str(good)],
          "incomplete", "optimizer/arrays.safetensors missing")
    shutil.rmtree(partial / "optimizer")
    fails(["apply", "--models", str(partial), "--device", str(good)],
          "incomplete", "optimizer/ missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    fails(["apply", "--models", str(empty), "--device", str(good)], "manifest.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"device": "x", "kind": "phone_cpu", "peak_gflops": 10}))
    fails(["apply", "--models", str(out), "--device", str(bad)], "lacks the device feature")
    weird = tmp_path / "weird.json"
    weird.write_text(json.dumps(_phone(kind="toaster")))
    fails(["apply", "--models", str(out), "--device", str(weird)], "unknown device kind")
    fails(["apply", "--models", str(out), "--device", str(tmp_path / "none.json")],
          "does not exist")
    fails(["apply", "--models", str(out), "--device", str(good), "--space", "nb201"],
          "ofa-quant", "nb201")
    fails(["apply", "--models", str(out), "--device", str(good), "--lambdas", "0.1,abc"],
          "--lambdas")
    fails(["apply", "--models", str(out), "--device", str(good), "--max-latency", "-1"],
          "max_latency must be a positive")


def test_manifest_for_another_space_is_refused(fast_run, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(fast_run[0], other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["space"] = "nb201"
    (other / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="fitted for"):
        load_models(other)


def test_run_errors_exit_2(tmp_path, capsys):
    def fails(argv, needle):
        rc = main(argv)
        err = capsys.readouterr().err
        assert rc == 2 and needle in err, err

    out = str(tmp_path / "m")
    fails(["run", "--fast", "--out", out, "--test-devices", "no_such_device"], "unknown device")
    fails(["run", "--fast", "--out", out, "--lambdas", "-1"], "--lambdas")
    fails(["run", "--fast", "--out", out, "--data-home", str(tmp_path), "--space", "ofa-quant"],
          "nb201")
    fails(["run", "--fast", "--out", out, "--data-home", str(tmp_path)], "nb201")
    assert not (tmp_path / "m").exists()


# ------------------------------------------------------------------- helpers
def test_design_summary_ofa():
    x = SPACE.sample(3, random_state=0)
    text = design_summary(SPACE, x)
    assert len(text) == 3 and all(len(t) < 40 for t in text)
    d = SPACE.to_dicts(x[:1])[0]
    assert text[0].startswith(f"r{d['r']} d")
    assert text[0].endswith("b") and "/a" in text[0]


@pytest.mark.realdata
def test_run_nb201_real_data(data_home, tmp_path, cli):
    out = tmp_path / "nb"
    rc, stdout, stderr = cli(["run", "--fast", "--data-home", str(data_home), "--out", str(out),
                               "--test-devices", "pixel3,titanx_1", "--quiet"])
    assert rc == 0, stderr
    assert "exhaustive" in stdout and "measured" in stdout
    assert "In truth (measured metrics)" in stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["space"] == "nb201" and manifest["energy"] is False
    assert manifest["lambda_columns"] == ["lambda_latency"]
    # The whole TITAN X group (batch 1/32/256) is held out, not only titanx_1.
    assert not [d for d in manifest["train_devices"] if d.startswith("titanx_")]
    assert not (out / "energy").exists() and "energy" not in manifest["files"]
    res = pd.read_csv(out / "results.csv")
    assert np.isfinite(res["true_latency_ms"]).all() and "true_energy_mJ" not in res
    srch = res[res["method"] != "optimizer"]
    opt = res[res["method"] == "optimizer"]
    # Exhaustive search is the exact optimum of the predicted objective.
    assert (opt["gap"].to_numpy() >= -1e-9).all()
    assert len(srch) == len(opt) == 2 * 2
