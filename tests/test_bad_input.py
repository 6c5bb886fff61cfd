"""What users type, checked: clear errors naming the field, value, file or option.

Issue #16. The Python API (device tables and files, predictors' inputs and
targets, the search objective), the command line in-process (``main(argv)``,
tiny ``--fast`` models) and, for a few cases, as a subprocess (exit code and no
traceback), plus hypothesis property tests of the validators on random junk.
"""

import errno
import json
import math
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skedge import AccuracyRegressor, DevicePerformanceRegressor
from skedge._checks import (
    CommandFailed,
    OutOfRangeWarning,
    check_positive_target,
    check_writable,
    load_model_file,
)
from skedge.cli import build_parser
from skedge.datasets import read_device_file
from skedge.devices import (
    DEVICE_FEATURES,
    FEATURE_BOUNDS,
    validate_device_table,
)
from skedge.persistence import load_model
from skedge.pipelines import make_accuracy_pipeline
from skedge.preprocessing import DeviceFeatureEncoder

ROOT = Path(__file__).resolve().parents[1]
PHONE = {"device": "my_phone", "kind": "phone_cpu", "batch_size": 1, "precision_bits": 8,
         "peak_gflops": 300.0, "mem_bandwidth_gbs": 30.0, "compute_units": 4,
         "clock_ghz": 2.8, "on_chip_mb": 4.0, "mem_gb": 8, "tdp_w": None,
         "process_nm": 7, "release_year": 2020}
UNWRITABLE = "/proc/skedge_no_such_dir/out.csv"  # not creatable, even by root


def _table(**over):
    return pd.DataFrame([{**PHONE, **over}])


@pytest.fixture(scope="module")
def models(tmp_path_factory, cli):
    out = tmp_path_factory.mktemp("bad_input") / "models"
    rc, _, err = cli(["run", "--fast", "--out", str(out), "--quiet", "--random-state", "1"])
    assert rc == 0, err
    return out


@pytest.fixture()
def phone_json(tmp_path):
    path = tmp_path / "my_phone.json"
    path.write_text(json.dumps(PHONE))
    return path


# ------------------------------------------------------------ device features
@pytest.mark.parametrize("field, value", [("clock_ghz", "2,8"), ("peak_gflops", "300 GFLOPS"),
                                          ("peak_gflops", "fast"), ("mem_gb", True)])
def test_non_numeric_feature_is_an_error_naming_field_and_value(field, value):
    with pytest.raises(ValueError, match=rf"'my_phone' has {field} = {value!r}.*not a number"):
        validate_device_table(_table(**{field: value}))


@pytest.mark.parametrize("field, value", [("peak_gflops", -300), ("peak_gflops", 1e300),
                                          ("clock_ghz", 2800), ("batch_size", 0.5),
                                          ("release_year", 20), ("mem_gb", 0)])
def test_impossible_feature_is_an_error(field, value):
    with pytest.raises(ValueError, match=rf"'my_phone' has {field} = {re.escape(f'{value:g}')}; expected"):
        validate_device_table(_table(**{field: value}))


def test_numeric_strings_and_missing_words_are_accepted():
    out = validate_device_table(_table(clock_ghz=" 2.8 ", tdp_w="n/a", mem_gb=""))
    assert out.loc["my_phone", "clock_ghz"] == 2.8
    assert np.isnan(out.loc["my_phone", "tdp_w"]) and np.isnan(out.loc["my_phone", "mem_gb"])


@settings(max_examples=150, deadline=None)
@given(field=st.sampled_from(list(FEATURE_BOUNDS)), text=st.text(max_size=12))
def test_property_text_is_a_number_missing_or_an_error(field, text):
    try:
        value = validate_device_table(_table(**{field: text})).loc["my_phone", field]
    except ValueError as exc:
        assert field in str(exc)
        return
    if np.isnan(value):
        assert text.strip().lower() in ("", "nan", "na", "n/a", "null", "none")
    else:
        assert value == pytest.approx(float(text))
        low, high, _ = FEATURE_BOUNDS[field]
        assert low <= value <= high


@settings(max_examples=150, deadline=None)
@given(field=st.sampled_from(list(FEATURE_BOUNDS)),
       value=st.floats(allow_nan=False, allow_infinity=False))
def test_property_numbers_in_bounds_pass_others_name_the_field(field, value):
    low, high, closed = FEATURE_BOUNDS[field]
    inside = (value >= low if closed else value > low) and value <= high
    whole = field not in ("batch_size", "precision_bits", "compute_units", "release_year")
    try:
        out = validate_device_table(_table(**{field: value}))
    except ValueError as exc:
        assert field in str(exc) and not (inside and (whole or value % 1 == 0))
    else:
        assert inside and out.loc["my_phone", field] == value


# ---------------------------------------------------------------- device files
def test_device_file_errors_name_the_file(tmp_path):
    cases = {"empty.json": "", "prose.json": "hello", "string.json": '"my_phone"',
             "numbers.json": "[1, 2]", "empty.csv": "", "header_only.csv": "device,kind\n"}
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(ValueError, match=str(path)):
            read_device_file(path)
    with pytest.raises(ValueError, match="is a directory"):
        read_device_file(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_device_file(tmp_path / "none.json")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=64), suffix=st.sampled_from([".json", ".csv"]))
def test_property_junk_device_files_raise_value_error_naming_the_file(tmp_path, data, suffix):
    path = tmp_path / f"junk{suffix}"
    path.write_bytes(data)
    try:
        read_device_file(path)
    except ValueError as exc:
        assert str(path) in str(exc)


# ----------------------------------------------------------------- predictors
def test_device_far_outside_training_range_warns():
    D = validate_device_table(pd.DataFrame([
        {**PHONE, "device": f"d{i}", "peak_gflops": 100.0 * (i + 1)} for i in range(5)]))
    enc = DeviceFeatureEncoder().fit(D.to_numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        enc.transform(D.to_numpy())  # the training devices themselves: silent
    far = D.to_numpy().copy()
    far[0, DEVICE_FEATURES.index("peak_gflops")] = 1e5
    with pytest.warns(OutOfRangeWarning, match="peak_gflops = 100000.*500"):
        enc.transform(far)


def test_zero_latency_among_many_keeps_the_log_target_and_warns():
    rng = np.random.RandomState(0)
    X = rng.rand(2400, 3)
    y = np.exp(X.sum(axis=1))
    y[7] = 0.0
    reg = DevicePerformanceRegressor(hidden_layer_sizes=(4,), max_epochs=1, random_state=0)
    with pytest.warns(UserWarning, match=r"1 of 2400 target values are <= 0"):
        reg.fit(X, y)
    assert reg.target_transform_ == "log"
    y[:3] = -1.0
    with pytest.warns(UserWarning, match=r"4 of 2400 .*minimum -1"):
        reg.fit(X, y)
    with pytest.raises(ValueError, match="every target value is 0"):
        reg.fit(X, np.zeros(len(X)))


def test_signed_targets_stay_signed_without_a_warning():
    rng = np.random.RandomState(0)
    X = rng.rand(200, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reg = DevicePerformanceRegressor(hidden_layer_sizes=(4,), max_epochs=1).fit(
            X, X[:, 0] - 0.5)
    assert reg.target_transform_ == "none"


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=60))
def test_property_check_positive_target(values):
    y = np.array(values)
    if not np.any(y):
        with pytest.raises(ValueError, match="every target value is 0"):
            check_positive_target(y)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out, floored = check_positive_target(y)
    if floored:
        assert (out > 0).all() and np.array_equal(out[y > 0], y[y > 0])
    else:
        assert np.array_equal(out, y)


def test_design_index_outside_the_space():
    rng = np.random.RandomState(0)
    X = rng.randint(0, 5, (100, 6))
    y = 70 + X[:, 0]
    bare = AccuracyRegressor(hidden_layer_sizes=(4,), max_epochs=1, random_state=0).fit(X, y)
    with pytest.warns(OutOfRangeWarning, match="x0 = 99"):
        bare.predict([[99, 0, 0, 0, 0, 0]])
    pipe = make_accuracy_pipeline("nb201", hidden_layer_sizes=(4,), max_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="'e0' holds index 99"):
        pipe.predict([[99, 0, 0, 0, 0, 0]])


def test_accuracy_as_fraction_warns_in_search(synthetic_objective):
    from skedge.optimize import SearchBaseline

    space, acc, lat, _, D = synthetic_objective
    X = space.sample(100, 0)
    frac = make_accuracy_pipeline(space, hidden_layer_sizes=(4,), max_epochs=2,
                                  random_state=0).fit(X, acc.predict(X) / 100)
    rows = np.column_stack([D[:2], [0.05, 0.05]])
    with pytest.warns(UserWarning, match="look like fractions"):
        SearchBaseline(space=space, accuracy=frac, latency=lat, method="random",
                       n_cycles=10).fit(rows)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        SearchBaseline(space=space, accuracy=acc, latency=lat, method="random",
                       n_cycles=10).fit(rows)


# ----------------------------------------------------------- files and models
def test_check_writable(tmp_path):
    check_writable(tmp_path / "new" / "deeper" / "out.csv", "--out")
    assert not (tmp_path / "new").exists()  # no trace left
    with pytest.raises(ValueError, match="--out .* is a directory"):
        check_writable(tmp_path, "--out")
    with pytest.raises(ValueError, match="cannot be written"):
        check_writable(UNWRITABLE, "--front")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        check_writable(tmp_path / "file", "--out", directory=True)


def test_load_model_file_damaged_or_wrong(models, tmp_path, joblib_v1_folder):
    old = joblib_v1_folder(models, tmp_path / "old")
    bad = tmp_path / "optimizer.joblib"
    for content in (b"", b"garbage", (old / "optimizer.joblib").read_bytes()[:2000]):
        bad.write_bytes(content)
        with pytest.raises(CommandFailed, match="could not be loaded.*not a joblib file"):
            load_model_file(bad, check=lambda o: True, expected="a model")
    with pytest.raises(CommandFailed, match="holds a Pipeline, not an optimizer"):
        load_model_file(old / "latency.joblib", check=lambda o: False,
                        expected="an optimizer")


def _damage_safe_model(folder, how, models):
    """Damage the safe-format model ``folder`` in one of the ways a copy or a disk can."""
    arrays, doc = folder / "arrays.safetensors", folder / "model.json"
    if how == "garbage arrays":
        arrays.write_bytes(b"garbage")
    elif how == "truncated arrays":
        arrays.write_bytes(arrays.read_bytes()[:999])
    elif how == "truncated json":
        doc.write_text(doc.read_text()[:999])
    elif how == "empty json":
        doc.write_text("")
    elif how == "wrong model":
        shutil.rmtree(folder)
        shutil.copytree(models / "latency", folder)


@pytest.mark.parametrize("how", ["garbage arrays", "truncated arrays", "truncated json",
                                 "empty json"])
def test_load_model_file_damaged_safe_model(models, tmp_path, how):
    bad = tmp_path / "optimizer"
    shutil.copytree(models / "optimizer", bad)
    _damage_safe_model(bad, how, models)
    with pytest.raises(CommandFailed, match="could not be loaded.*not a skedge model folder"):
        load_model_file(bad, check=lambda o: True, expected="a model", load=load_model,
                        kind="a skedge model folder")
    with pytest.raises(CommandFailed, match="holds a Pipeline, not an optimizer"):
        load_model_file(models / "latency", check=lambda o: False, expected="an optimizer",
                        load=load_model, kind="a skedge model folder")


# ----------------------------------------------------------------------- run
def test_run_refuses_a_non_empty_models_folder(models, cli):
    before = {p.name: p.stat().st_mtime_ns for p in models.iterdir()}
    rc, out, err = cli(["run", "--fast", "--out", str(models)])
    assert rc == 2 and "--overwrite" in err and "[2/5]" not in out
    assert {p.name: p.stat().st_mtime_ns for p in models.iterdir()} == before


def test_run_overwrite_replaces_the_models(tmp_path, cli):
    out = tmp_path / "m"
    out.mkdir()
    (out / "note.txt").write_text("mine")
    assert cli(["run", "--fast", "--out", str(out), "--quiet"])[0] == 2
    rc, stdout, err = cli(["run", "--fast", "--out", str(out), "--quiet", "--overwrite",
                           "--model-format", "joblib"])
    assert rc == 0, err
    assert (out / "optimizer.joblib").is_file() and (out / "note.txt").read_text() == "mine"
    assert not (out / "optimizer").exists()
    assert json.loads((out / "manifest.json").read_text())["model_format"] == "joblib"
    # The next step shows the JSON a device file needs.
    assert '"kind": "phone_cpu"' in stdout and f"skedge apply --models {out}" in stdout


@pytest.mark.parametrize("argv, needle", [
    (["--test-devices", "100"], "hold out at most 6"),
    (["--test-devices", "8", "--n-devices", "14"], "hold out at most 7"),
    (["--n-devices", "40", "--test-devices", "20"], "one per device family"),
    (["--out", str(Path(UNWRITABLE).parent)], "cannot be written"),
    (["--n-designs", "0"], "--n-designs"),
])
def test_run_usage_errors_before_any_work(tmp_path, argv, needle, cli):
    argv = ["run", "--fast", "--out", str(tmp_path / "m")] + argv
    rc, out, err = cli(argv)
    assert rc == 2 and needle in err, err
    assert "[2/5]" not in out


# --------------------------------------------------------------------- apply
def test_apply_usage_errors_name_option_or_file(models, phone_json, tmp_path, cli):
    def fails(extra, *needles, device=phone_json):
        rc, _, err = cli(["apply", "--models", str(models), "--device", str(device)] + extra)
        assert rc == 2, err
        for needle in needles:
            assert needle in err, err

    fails(["--out", str(tmp_path)], "--out", "is a directory")
    fails(["--front", UNWRITABLE], "--front", "cannot be written")
    fails([], "is a directory", device=tmp_path)
    for name, text in (("empty.json", ""), ("prose.json", "hi"), ("string.json", '"x"')):
        (tmp_path / name).write_text(text)
        fails([], str(tmp_path / name), device=tmp_path / name)
    comma = tmp_path / "comma.json"
    comma.write_text(json.dumps({**PHONE, "clock_ghz": "2,8"}))
    fails([], "clock_ghz = '2,8'", device=comma)


@pytest.mark.parametrize("how, needle", [
    ("garbage arrays", "could not be loaded"), ("truncated json", "could not be loaded"),
    ("wrong model", "holds a Pipeline"),
])
def test_apply_damaged_models_exit_1(models, phone_json, tmp_path, cli, how, needle):
    broken = tmp_path / "broken"
    shutil.copytree(models, broken)
    _damage_safe_model(broken / "optimizer", how, models)
    rc, _, err = cli(["apply", "--models", str(broken), "--device", str(phone_json)])
    assert rc == 1 and needle in err and f"{broken / 'optimizer'} " in err, err


def test_apply_damaged_joblib_models_exit_1(models, phone_json, tmp_path, cli,
                                            joblib_v1_folder):
    """A folder written before the safe format (joblib, manifest version 1) still loads, and
    a damaged pickle in it is reported as before."""
    old = joblib_v1_folder(models, tmp_path / "old")
    rc, _, err = cli(["apply", "--models", str(old), "--device", str(phone_json)])
    assert rc == 0, err
    for content, needle in ((b"garbage", "could not be loaded"),
                            ((old / "latency.joblib").read_bytes(), "holds a Pipeline")):
        (old / "optimizer.joblib").write_bytes(content)
        rc, _, err = cli(["apply", "--models", str(old), "--device", str(phone_json)])
        assert rc == 1 and needle in err and "optimizer.joblib" in err, err


def test_apply_os_error_while_writing_exit_1(models, phone_json, tmp_path, monkeypatch, cli):
    def read_only(self, path, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(pd.DataFrame, "to_csv", read_only)
    rc, _, err = cli(["apply", "--models", str(models), "--device", str(phone_json),
                       "--out", str(tmp_path / "d.csv")])
    assert rc == 1 and "Read-only file system" in err and "d.csv" in err, err


def test_apply_far_device_warns_on_one_line(models, tmp_path, cli):
    far = tmp_path / "far.json"
    far.write_text(json.dumps({**PHONE, "peak_gflops": 5e6}))
    rc, _, err = cli(["apply", "--models", str(models), "--device", str(far)])
    assert rc == 0, err
    lines = [line for line in err.splitlines() if "peak_gflops" in line]
    assert len(lines) == 1 and lines[0].startswith("skedge apply: warning:"), err


def test_apply_outputs_explained_and_complete(models, phone_json, tmp_path, cli):
    front = tmp_path / "front.csv"
    rc, out, err = cli(["apply", "--models", str(models), "--device", str(phone_json),
                         "--front", str(front), "--max-latency", "1000"])
    assert rc == 0, err
    assert "candidate designs scored by the predictors" in out or "exact" in out
    assert front.read_bytes().endswith(b"\n")


# ---------------------------------------------------------------------- help
def test_help_is_plain_text_and_documents_every_option():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name, command in commands.items():
        texts = [command.description or ""] + [a.help or "" for a in command._actions]
        assert not [t for t in texts if "``" in t or ":class:" in t or ":func:" in t], name
        if name in ("run", "apply", "evaluate-optimizer"):
            undocumented = [a.dest for a in command._actions if not a.help]
            assert not undocumented, (name, undocumented)


# --------------------------------------------------------------- subprocesses
@pytest.mark.parametrize("argv, code, needle", [
    (["run", "--fast", "--test-devices", "100", "--out", "{tmp}/m"], 2, "--test-devices"),
    (["apply", "--models", "{tmp}", "--device", "{tmp}"], 2, "is a directory"),
    (["apply", "--models", "{models}", "--device", "{tmp}/none.json"], 2, "does not exist"),
])
def test_cli_subprocess_exit_codes_without_traceback(models, tmp_path, argv, code, needle):
    argv = [a.format(tmp=tmp_path, models=models) for a in argv]
    proc = subprocess.run([sys.executable, "-m", "skedge", *argv], capture_output=True,
                          text=True, cwd=ROOT, timeout=120, check=False)
    assert proc.returncode == code, proc.stderr
    assert needle in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_cli_subprocess_damaged_model_exit_1(models, phone_json, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(models, broken)
    _damage_safe_model(broken / "optimizer", "truncated arrays", models)
    proc = subprocess.run([sys.executable, "-m", "skedge", "apply", "--models", str(broken),
                           "--device", str(phone_json)], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"{broken / 'optimizer'} could not be loaded" in proc.stderr


# -------------------------------------------------------- evaluate-optimizer
@pytest.mark.realdata
def test_evaluate_optimizer_partly_measured_device(data_home, tmp_path):
    """A device measured on 300 cells (as `skedge measure --n 300` gives) trains or is
    left out with a reason; as a test device it is refused with a message."""
    from skedge.evaluation import evaluate_optimizer

    home = tmp_path / "home"
    (home / "nb201").mkdir(parents=True)
    (home / "devices").mkdir()
    for name in ("reference_archs.json", "nb201/archs.csv"):
        (home / name).symlink_to(Path(data_home) / name)
    lat = pd.read_csv(Path(data_home) / "nb201/latency_help.csv")
    keep = np.zeros(len(lat), dtype=bool)
    keep[np.random.RandomState(0).choice(len(lat), 300, replace=False)] = True
    lat["mybox"] = np.where(keep, lat["pixel3"] * 1.1, np.nan)
    lat.to_csv(home / "nb201/latency_help.csv", index=False)
    devices = pd.read_csv(Path(data_home) / "devices/devices.csv")
    row = devices[devices["device"] == "pixel3"].assign(device="mybox")
    pd.concat([devices, row]).to_csv(home / "devices/devices.csv", index=False)
    tiny = {"hidden_layer_sizes": (8,), "max_epochs": 1, "n_estimators": 1}
    summary, _ = evaluate_optimizer(
        "nb201", data_home=home, test_devices=["titanx_1"], n_lambdas=2, n_train_designs=100,
        predictor_params=tiny, optimizer_params={"n_steps": 2, "hidden_layer_sizes": (8,)},
        verbose=0)
    assert math.isfinite(summary["regret_true_median"])
    with pytest.raises(ValueError, match="'mybox' is measured on 300 of 15,625 cells"):
        evaluate_optimizer("nb201", data_home=home, test_devices=["mybox"], n_lambdas=2,
                           predictor_params=tiny, verbose=0)
