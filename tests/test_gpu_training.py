"""GPU training: the ``device`` parameter of the predictors and the optimizer.

Without a GPU the checks stop where CUDA is needed: a clear error at fit, and
a pickle of a net marked as CUDA-trained loads and predicts on a CPU-only
machine. The CUDA tests run where torch sees a GPU and skip otherwise.
"""

import json
import os
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from skedge import AccuracyRegressor, DevicePerformanceRegressor
from skedge.optimize import AmortizedDesignOptimizer, sample_optimizer_inputs

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="no CUDA GPU visible to torch on this machine")
TINY = {"hidden_layer_sizes": (16,), "max_epochs": 3, "random_state": 0}


def _data():
    rng = np.random.RandomState(0)
    X = rng.rand(200, 4)
    return X, np.exp(X @ [1.0, 0.5, -0.5, 0.2])


@pytest.mark.parametrize("cls", [AccuracyRegressor, DevicePerformanceRegressor])
def test_cuda_without_gpu_is_a_clear_error_at_fit(cls, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    X, y = _data()
    reg = cls(device="cuda", **TINY)  # __init__ only stores it
    with pytest.raises(ValueError, match="no CUDA GPU"):
        reg.fit(X, y)
    with pytest.raises(ValueError, match="'cpu', 'cuda' or 'cuda:N'"):
        cls(device="gpu0", **TINY).fit(X, y)


def test_pickle_of_a_cuda_trained_net_predicts_on_a_cpu_only_machine(monkeypatch):
    X, y = _data()
    reg = DevicePerformanceRegressor(n_estimators=2, **TINY).fit(X, y)
    expected = reg.predict(X)
    # What a GPU fit leaves behind: the estimator and its skorch nets set to CUDA.
    reg.device = "cuda"
    for net in reg.estimators_:
        net.device = "cuda"
    blob = pickle.dumps(reg)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skorch says it maps the weights to the CPU
        loaded = pickle.loads(blob)
    assert all(str(net.device) == "cpu" for net in loaded.estimators_)
    np.testing.assert_allclose(loaded.predict(X), expected)


def test_optimizer_device_is_checked_at_fit(synthetic_objective, monkeypatch):
    space, acc, lat, _, D = synthetic_objective
    X = sample_optimizer_inputs(D[:20], 50, random_state=0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    opt = AmortizedDesignOptimizer(space=space, accuracy=acc, latency=lat, device="cuda",
                                   n_steps=2, n_augment=0, hidden_layer_sizes=(8,))
    with pytest.raises(ValueError, match="no CUDA GPU"):
        opt.fit(X)
    opt.set_params(device="cpu").fit(X)
    assert all(p.device.type == "cpu" for net in opt.networks_ for p in net.parameters())


@needs_cuda
def test_predictor_fitted_on_gpu_loads_on_cpu_only_machine(tmp_path):
    X, y = _data()
    reg = DevicePerformanceRegressor(device="cuda", **TINY).fit(X, y)
    assert next(reg.estimators_[0].module_.parameters()).is_cuda
    pred = reg.predict(X)
    path = tmp_path / "reg.pkl"
    path.write_bytes(pickle.dumps(reg))
    np.save(tmp_path / "X.npy", X)
    code = (
        "import json, pickle, warnings, numpy as np\n"
        "warnings.simplefilter('ignore')\n"
        f"reg = pickle.loads(open({str(path)!r}, 'rb').read())\n"
        f"print(json.dumps(reg.predict(np.load({str(tmp_path / 'X.npy')!r})).tolist()))\n"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # a CPU-only machine
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, check=True)
    np.testing.assert_allclose(json.loads(done.stdout), pred, rtol=1e-5)


@needs_cuda
@pytest.mark.parametrize("finetune", [0.0, 0.5])
def test_optimizer_trains_on_gpu_and_predicts_on_cpu(synthetic_objective, finetune):
    space, acc, lat, _, D = synthetic_objective
    X = sample_optimizer_inputs(D[:20], 50, random_state=0)
    opt = AmortizedDesignOptimizer(space=space, accuracy=acc, latency=lat, device="cuda",
                                   n_steps=20, n_augment=0, hidden_layer_sizes=(8,),
                                   distill=256, finetune=finetune, random_state=0).fit(X)
    assert all(p.device.type == "cpu" for net in opt.networks_ for p in net.parameters())
    assert opt.predict(X).shape == (len(X), space.n_choices)
    # Fine-tuning (its predictors on the GPU as well) ran there and recorded its curve.
    assert len(opt.finetune_curves_) == (len(opt.networks_) if finetune else 0)
    assert all(np.isfinite(c).all() and len(c) for c in opt.finetune_curves_)
