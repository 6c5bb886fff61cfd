"""Saving and loading models: the safe format (save_model/load_model) and joblib pickles."""

import copy
import json
import pickle
import sys

import joblib
import numpy as np
import pytest
import torch
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from skedge import (
    AccuracyRegressor,
    DevicePerformanceRegressor,
    load_model,
    save_model,
)
from skedge.datasets import make_edge_benchmark, to_pairs
from skedge.fewshot import FewShotAdapter
from skedge.optimize import AmortizedDesignOptimizer, SearchBaseline, sample_optimizer_inputs
from skedge.pipelines import make_accuracy_pipeline, make_performance_pipeline

TINY = dict(hidden_layer_sizes=(16, 16), max_epochs=3, batch_size=128, random_state=0)


@pytest.fixture(scope="module")
def bench():
    return make_edge_benchmark("nb201", n_designs=150, n_devices=5, random_state=0)


@pytest.fixture(scope="module")
def accuracy(bench):
    return make_accuracy_pipeline(bench.space, **TINY).fit(bench.designs, bench.accuracy)


@pytest.fixture(scope="module")
def spec_pipeline(bench):
    # Fitted on a DataFrame: feature_names_in_ (an object array) must survive too.
    X, y, _ = to_pairs(bench, as_frame=True)
    return make_performance_pipeline(bench.space, n_estimators=2, **TINY).fit(X, y), X


@pytest.fixture(scope="module")
def signature_pipeline(bench):
    X, y, _ = to_pairs(bench, signature=bench.reference_idx)
    return make_performance_pipeline(bench.space, n_signature=10, **TINY).fit(X, y), X


@pytest.fixture(scope="module")
def regressor():
    rng = np.random.RandomState(0)
    X = rng.rand(120, 4)
    y = np.exp(X @ [1.0, -1.0, 0.5, 2.0])
    return DevicePerformanceRegressor(n_estimators=3, **TINY).fit(X, y), X, y


def roundtrip(model, tmp_path, name="model"):
    return load_model(save_model(model, tmp_path / name))


# ----------------------------------------------------------------- safe format
def test_regressor_predicts_identically_with_spread_and_keeps_params(regressor, tmp_path):
    reg, X, _ = regressor
    loaded = roundtrip(reg, tmp_path)
    assert type(loaded) is DevicePerformanceRegressor
    mean, std = reg.predict(X, return_std=True)
    mean2, std2 = loaded.predict(X, return_std=True)
    np.testing.assert_array_equal(mean2, mean)
    np.testing.assert_array_equal(std2, std)
    assert std.max() > 0  # three different members really were stored
    assert loaded.get_params() == reg.get_params()
    assert loaded.target_transform_ == "log" and loaded.n_features_in_ == 4
    # the rebuilt members are skorch nets on the CPU, in eval mode
    assert all(net.device == "cpu" and not net.module_.training for net in loaded.estimators_)
    with torch.no_grad():
        np.testing.assert_array_equal(
            torch.stack([net.module_(torch.zeros(1, 4)) for net in loaded.estimators_]).numpy(),
            torch.stack([net.module_(torch.zeros(1, 4)) for net in reg.estimators_]).numpy(),
        )


def test_loaded_regressor_refits_like_the_original(regressor, tmp_path):
    reg, X, y = regressor
    loaded = roundtrip(reg, tmp_path)
    fresh = copy.deepcopy(reg).fit(X[:60], y[:60])
    loaded.fit(X[:60], y[:60])
    np.testing.assert_array_equal(loaded.predict(X), fresh.predict(X))


def test_accuracy_regressor_and_pipeline(bench, accuracy, tmp_path):
    reg = AccuracyRegressor(**TINY).fit(bench.designs, bench.accuracy)
    np.testing.assert_array_equal(roundtrip(reg, tmp_path, "reg").predict(bench.designs),
                                  reg.predict(bench.designs))
    loaded = roundtrip(accuracy, tmp_path, "pipe")
    np.testing.assert_array_equal(loaded.predict(bench.designs), accuracy.predict(bench.designs))
    assert repr(loaded) == repr(accuracy)


@pytest.mark.parametrize("which", ["spec_pipeline", "signature_pipeline"])
def test_performance_pipelines_predict_identically(which, request, tmp_path):
    pipe, X = request.getfixturevalue(which)
    loaded = roundtrip(pipe, tmp_path)
    np.testing.assert_array_equal(loaded.predict(X), pipe.predict(X))
    assert repr(loaded) == repr(pipe)
    assert loaded.get_params()["regressor__n_estimators"] == pipe.get_params()[
        "regressor__n_estimators"]
    # the fitted sub-objects came back as what they were
    ct, ct2 = pipe.named_steps["features"], loaded.named_steps["features"]
    assert ct2.output_indices_ == ct.output_indices_
    for (n1, t1, c1), (n2, t2, c2) in zip(ct.transformers_, ct2.transformers_):
        assert (n1, type(t1), c1) == (n2, type(t2), c2)


def test_frame_pipeline_keeps_feature_names(spec_pipeline, tmp_path):
    pipe, X = spec_pipeline
    loaded = roundtrip(pipe, tmp_path)
    names = loaded.named_steps["features"].feature_names_in_
    assert names.dtype == object and list(names) == list(X.columns)
    with pytest.raises(ValueError, match="columns are missing"):
        loaded.predict(X.rename(columns={"kind": "KIND"}))


def test_amortized_optimizer_and_fewshot_adapter(bench, accuracy, tmp_path):
    X, y, _ = to_pairs(bench)
    latency = make_performance_pipeline(bench.space, **TINY).fit(X, y)
    rows = sample_optimizer_inputs(bench.devices.to_numpy(), 16, random_state=0)
    opt = AmortizedDesignOptimizer(space=bench.space, accuracy=accuracy, latency=latency,
                                   n_steps=10, n_augment=32, n_estimators=2, refine=1,
                                   random_state=0).fit(rows)
    loaded = roundtrip(opt, tmp_path, "opt")
    np.testing.assert_array_equal(loaded.predict(rows), opt.predict(rows))
    np.testing.assert_array_equal(loaded.design_probabilities(rows),
                                  opt.design_probabilities(rows))
    assert not any(p.requires_grad for net in loaded.networks_ for p in net.parameters())

    adapter = FewShotAdapter(latency).fit(X[:10], 2 * y[:10])
    loaded = roundtrip(adapter, tmp_path, "adapter")
    np.testing.assert_array_equal(loaded.predict(X), adapter.predict(X))


def test_shared_estimators_stay_shared(accuracy, tmp_path):
    adapter = FewShotAdapter(accuracy)
    loaded_accuracy, loaded_adapter = roundtrip((accuracy, adapter), tmp_path)
    assert loaded_adapter.estimator is loaded_accuracy


def test_load_leaves_the_global_torch_rng_alone(regressor, tmp_path):
    folder = save_model(regressor[0], tmp_path / "m")
    before = torch.random.get_rng_state().clone()
    load_model(folder)
    assert torch.equal(torch.random.get_rng_state(), before)


def test_files_are_json_and_safetensors_only(signature_pipeline, tmp_path):
    from safetensors.numpy import load_file

    folder = save_model(signature_pipeline[0], tmp_path / "m")
    assert sorted(p.name for p in folder.iterdir()) == ["arrays.safetensors", "model.json"]
    doc = json.loads((folder / "model.json").read_text())
    assert doc["format"] == "skedge-safe-model" and doc["class"] == "sklearn.pipeline.Pipeline"
    assert {"skedge", "scikit-learn", "torch"} <= set(doc["versions"])
    arrays = load_file(str(folder / "arrays.safetensors"))
    assert len(arrays) == doc["arrays"]["count"] > 0
    assert b"pickle" not in (folder / "model.json").read_bytes()


def test_load_refuses_classes_outside_sklearn_and_skedge(regressor, tmp_path):
    folder = save_model(regressor[0], tmp_path / "m")
    text = (folder / "model.json").read_text()
    for evil in ("os.system", "subprocess.Popen", "builtins.eval", "sklearn.base.clone"):
        doc = json.loads(text)
        doc["root"]["__estimator__"] = evil
        (folder / "model.json").write_text(json.dumps(doc))
        with pytest.raises(ValueError, match="only rebuilds estimators"):
            load_model(folder)
    doc = json.loads(text)
    doc["root"]["state"]["estimators_"][0]["params"]["optimizer"] = "os.system"
    (folder / "model.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="unknown torch.optim class"):
        load_model(folder)


def test_load_detects_mismatched_or_missing_files(regressor, tmp_path):
    a = save_model(regressor[0], tmp_path / "a")
    b = save_model(AccuracyRegressor(**TINY).fit(regressor[1], regressor[2]), tmp_path / "b")
    (a / "arrays.safetensors").write_bytes((b / "arrays.safetensors").read_bytes())
    with pytest.raises(ValueError, match="checksum differs"):
        load_model(a)
    (b / "model.json").unlink()
    with pytest.raises(FileNotFoundError, match="model.json"):
        load_model(b)
    (b / "model.json").write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="not a skedge model file"):
        load_model(b)


def test_save_refuses_unsupported_objects_and_existing_folders(bench, accuracy, regressor,
                                                               tmp_path):
    pipe = make_pipeline(FunctionTransformer(np.log1p), AccuracyRegressor())
    with pytest.raises(TypeError, match=r"Pipeline\.steps\[0\]\[1\]\.func.*joblib"):
        save_model(pipe, tmp_path / "f")
    search = SearchBaseline(space=bench.space, accuracy=accuracy, latency=accuracy)
    search.objective_ = object()  # a fitted search holds a predictor-derived objective
    with pytest.raises(TypeError, match="objective_"):
        save_model(search, tmp_path / "s")
    folder = save_model(regressor[0], tmp_path / "m")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_model(regressor[0], folder)
    save_model(regressor[0], folder, overwrite=True)
    np.testing.assert_array_equal(load_model(folder).predict(regressor[1]),
                                  regressor[0].predict(regressor[1]))


def test_missing_safetensors_gives_an_install_hint(regressor, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    with pytest.raises(ImportError, match=r"pip install safetensors"):
        save_model(regressor[0], tmp_path / "m")


# --------------------------------------------------------------------- joblib
def test_joblib_roundtrip_predicts_identically(signature_pipeline, tmp_path):
    pipe, X = signature_pipeline
    joblib.dump(pipe, tmp_path / "pipe.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "pipe.joblib").predict(X),
                                  pipe.predict(X))


def test_joblib_pickle_of_cuda_model_loads_on_cpu_only_machine(regressor, tmp_path, monkeypatch):
    """A pickle whose skorch members say CUDA loads on a CPU-only machine.

    What is exercised, honestly: this machine has no GPU, so no real CUDA
    tensor is created. As in skorch's own tests (which replay a pickle made
    on a GPU and patch ``torch.cuda.is_available``), the file is made to look
    exactly like one from a CUDA machine: each member's ``device`` is
    ``"cuda"`` and every tensor storage is tagged ``cuda:0`` in the file (via
    torch's serialization location tagger). The test first shows that these
    tags are real: plain ``torch.load`` of the weights fails with torch's
    "Attempting to deserialize object on a CUDA device" error. Then, with
    ``torch.cuda.is_available`` patched to return False, ``joblib.load``
    succeeds: skorch's ``NeuralNet.__setstate__`` maps the weights to the
    CPU (``get_map_location``) and warns (``DeviceWarning``). Predictions are
    identical. What is not exercised: CUDA-side numerics (weights of a real
    GPU run are plain float32 values, as here).
    """
    from skorch.exceptions import DeviceWarning
    from torch import serialization

    reg, X, _ = regressor
    cuda_reg = copy.deepcopy(reg)
    for net in cuda_reg.estimators_:
        net.device = "cuda"

    def tag_as_cuda(storage):
        return "cuda:0" if storage.device.type == "cpu" else None

    with monkeypatch.context() as m:
        m.setattr(serialization, "_package_registry",
                  [(0, tag_as_cuda, None)] + list(serialization._package_registry))
        joblib.dump(cuda_reg, tmp_path / "cuda.joblib")
        weights = cuda_reg.estimators_[0].__getstate__()["__cuda_dependent_attributes__"]

    monkeypatch.setattr(torch.cuda, "is_available", lambda *_: False)
    with pytest.raises(RuntimeError, match="deserialize object on a CUDA device"):
        pickle.loads(weights)  # torch.load without map_location: the tags say CUDA
    with pytest.warns(DeviceWarning) as record:
        loaded = joblib.load(tmp_path / "cuda.joblib")
    messages = [str(w.message) for w in record]
    assert any("no CUDA devices are available" in msg for msg in messages)
    assert any("Setting self.device = cpu" in msg for msg in messages)
    assert all(torch.device(net.device).type == "cpu" for net in loaded.estimators_)
    assert all(p.device.type == "cpu" for net in loaded.estimators_
               for p in net.module_.parameters())
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))
