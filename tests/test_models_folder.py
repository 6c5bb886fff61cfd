"""The models folder of `skedge run` (skedge.persistence.save_models_folder / load_models):
both model formats, re-saves that never mix two runs or formats, old (version 1) folders."""

import json
import sys

import numpy as np
import pytest
from sklearn.utils import Bunch

from skedge.devices import DEVICE_FEATURES
from skedge.persistence import (
    MODEL_FORMATS,
    check_models_folder,
    load_models,
    save_models_folder,
)
from skedge.workflow import run_workflow

NAMES = ("accuracy", "latency", "energy", "optimizer")


@pytest.fixture(scope="module")
def result():
    return run_workflow(fast=True, random_state=2)


def _query(result):
    """(device, λ) rows of the unseen devices, as the optimizer takes them."""
    data = result.data
    D = data.bench.devices.loc[list(data.test_devices), list(DEVICE_FEATURES)].to_numpy(float)
    lam = np.full((len(D), 1), result.lambdas[0])
    return np.hstack([D, lam, np.full((len(D), 1), result.lambda_energy)])


def _model_paths(out):
    return sorted(p.name for p in out.iterdir() if p.name.split(".")[0] in NAMES)


@pytest.mark.parametrize("model_format", MODEL_FORMATS)
def test_each_format_round_trips(result, tmp_path, model_format):
    files = save_models_folder(tmp_path, result, model_format=model_format)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["format_version"] == 2 and manifest["model_format"] == model_format
    suffix = "" if model_format == "safe" else ".joblib"
    assert manifest["files"] == {k: f"{k}{suffix}" for k in NAMES}
    assert files == [f"{k}/" if model_format == "safe" else f"{k}.joblib" for k in NAMES] + [
        "manifest.json"]
    loaded = load_models(tmp_path)
    X = _query(result)
    np.testing.assert_array_equal(loaded.optimizer.predict(X), result.optimizer.predict(X))
    designs = result.optimizer.predict(X)
    np.testing.assert_array_equal(loaded.accuracy.predict(designs),
                                  result.models.accuracy.predict(designs))
    for key in ("latency", "energy"):
        assert type(loaded[key]) is type(result.models[key])


@pytest.mark.parametrize("first, second", [("joblib", "safe"), ("safe", "joblib")])
def test_resave_in_the_other_format_leaves_no_stale_models(result, tmp_path, first, second):
    save_models_folder(tmp_path, result, model_format=first)
    (tmp_path / "note.txt").write_text("mine")
    save_models_folder(tmp_path, result, model_format=second)
    expected = list(NAMES) if second == "safe" else [f"{k}.joblib" for k in NAMES]
    assert _model_paths(tmp_path) == sorted(expected)
    assert (tmp_path / "note.txt").read_text() == "mine"
    assert load_models(tmp_path).manifest["model_format"] == second


@pytest.mark.parametrize("model_format", MODEL_FORMATS)
def test_resave_without_energy_removes_the_energy_model(result, tmp_path, model_format):
    for fmt in MODEL_FORMATS:  # a stale energy model in each format
        save_models_folder(tmp_path / fmt, result, model_format=fmt)
    out = tmp_path / "joblib"
    for part in (tmp_path / "safe" / "energy").iterdir():
        (out / "energy").mkdir(exist_ok=True)
        (out / "energy" / part.name).write_bytes(part.read_bytes())
    no_energy = Bunch(**{**result, "models": Bunch(**{**result.models, "energy": None})})
    save_models_folder(out, no_energy, model_format=model_format)
    assert not (out / "energy").exists() and not (out / "energy.joblib").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["energy"] is False and "energy" not in manifest["files"]


def test_model_folder_with_user_files_is_kept_when_stale(result, tmp_path):
    save_models_folder(tmp_path, result)
    (tmp_path / "energy" / "README").write_text("mine")
    save_models_folder(tmp_path, result, model_format="joblib")
    assert sorted(p.name for p in (tmp_path / "energy").iterdir()) == ["README"]


def test_version_1_folder_loads(result, tmp_path, joblib_v1_folder):
    save_models_folder(tmp_path / "new", result)
    old = joblib_v1_folder(tmp_path / "new", tmp_path / "old")
    manifest = json.loads((old / "manifest.json").read_text())
    assert manifest["format_version"] == 1 and "model_format" not in manifest
    loaded = load_models(old)
    X = _query(result)
    np.testing.assert_array_equal(loaded.optimizer.predict(X), result.optimizer.predict(X))
    # A version 1 manifest without a "files" map names the joblib files by default.
    del manifest["files"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    assert load_models(old).energy is not None


@pytest.mark.parametrize("change, message", [
    ({"format_version": 3}, "format version 3; this skedge .* reads versions 1 to 2"),
    ({"model_format": "onnx"}, "names the model format 'onnx'"),
    ({"model_format": None}, "names the model format None"),
])
def test_unknown_manifest_version_or_format_is_refused(result, tmp_path, change, message):
    save_models_folder(tmp_path, result)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    (tmp_path / "manifest.json").write_text(json.dumps({**manifest, **change}))
    with pytest.raises(ValueError, match=message):
        load_models(tmp_path)


def test_unknown_model_format_is_refused(result, tmp_path):
    with pytest.raises(ValueError, match="--model-format must be one of safe, joblib"):
        check_models_folder(tmp_path / "m", overwrite=False, model_format="pickle")
    with pytest.raises(ValueError, match="model_format must be one of safe, joblib"):
        save_models_folder(tmp_path / "m", result, model_format="pickle")
    assert not (tmp_path / "m").exists()


def test_safe_format_without_safetensors_is_a_usage_error(result, tmp_path, monkeypatch):
    save_models_folder(tmp_path / "m", result)
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)  # as if not installed
    with pytest.raises(ValueError, match="safetensors.*--model-format joblib"):
        check_models_folder(tmp_path / "new", overwrite=False)
    check_models_folder(tmp_path / "new", overwrite=False, model_format="joblib")
    with pytest.raises(ValueError, match="needs the safetensors package"):
        load_models(tmp_path / "m")


@pytest.mark.parametrize("name", ["../elsewhere", "/etc/passwd", "sub/optimizer", "..", 3])
def test_manifest_file_names_stay_in_the_folder(result, tmp_path, name):
    save_models_folder(tmp_path, result)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["files"]["optimizer"] = name
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"files\['optimizer'\] = .* is not a file name in"):
        load_models(tmp_path)
