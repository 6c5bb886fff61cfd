"""Few-shot designs: AdaptedObjective, design_with_shots and `skedge apply --shots`."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from skedge.cli import main
from skedge.datasets._measurement_format import measurement_columns
from skedge.devices import DEVICE_FEATURES
from skedge.optimize._adapted import AdaptedObjective, adapted_encoding, design_with_shots
from skedge.optimize._relaxation import blocks_of
from skedge.persistence import load_models
from skedge.spaces import get_space

SPACE = get_space("ofa-quant")


@pytest.fixture(scope="module")
def fast_run(tmp_path_factory, cli):
    out = tmp_path_factory.mktemp("job") / "models"
    rc, _, stderr = cli(["run", "--fast", "--out", str(out), "--random-state", "3"])
    assert rc == 0, stderr
    return out


def _phone(name="my_phone"):
    return {"device": name, "kind": "phone_cpu", "batch_size": 1, "precision_bits": 8,
            "peak_gflops": 300.0, "mem_bandwidth_gbs": 30.0, "compute_units": 4,
            "clock_ghz": 2.8, "on_chip_mb": 4.0, "mem_gb": 8, "tdp_w": None,
            "process_nm": 7, "release_year": 2020}


def _shots_file(path, designs, latency, *, device="my_phone", space=SPACE, status="ok",
                energy=None):
    """A measurement CSV as `skedge measure` writes it (the columns the reader needs)."""
    rows = []
    for i, (x, lat) in enumerate(zip(designs, latency)):
        row = dict.fromkeys(measurement_columns(space), "")
        row.update(dict(zip(space.choice_names, x)))
        row.update(device=device, space="ofa-quant" if space.name == "ofa" else space.name,
                   design_str=space.to_string(x), latency_ms=lat, status=status,
                   n_runs=5, warmup=1, threads=1, round=1, backend="torch", target="cpu")
        if energy is not None:
            row["energy_mj"] = energy[i]
        rows.append(row)
    pd.DataFrame(rows, columns=measurement_columns(space)).to_csv(path, index=False)
    return path


def _device_row():
    d = pd.DataFrame([_phone()]).drop(columns="device")
    d["kind"] = 0.0  # phone_cpu
    return d[list(DEVICE_FEATURES)].astype(float).to_numpy()[0]


def test_adapted_objective_replaces_latency_and_its_normalizer(fast_run):
    opt = load_models(fast_run).optimizer
    obj, d = opt.objective_, _device_row()
    designs = SPACE.sample(20, random_state=0)
    base = obj.metrics(designs, d)
    adapted = AdaptedObjective(obj, {"latency": lambda X: 3.0 * obj.metrics(X, d)["latency"]})
    m = adapted.metrics(designs, d)
    np.testing.assert_allclose(m["latency"], 3 * base["latency"], rtol=1e-6)
    np.testing.assert_allclose(m["accuracy"], base["accuracy"])
    refs = adapted.references(np.tile(d, (2, 1)))
    np.testing.assert_allclose(refs[:, 0], 3 * obj.references(d[None])[0, 0], rtol=1e-5)
    # A uniform scale changes nothing in the objective (the normalizer scales too).
    lam = np.tile([0.1, 0.02], (20, 1))
    np.testing.assert_allclose(
        adapted.value_from_metrics(m, lam, np.repeat(refs[:1], 20, axis=0)),
        obj.value_from_metrics(base, lam, np.repeat(obj.references(d[None]), 20, axis=0)),
        rtol=1e-5)
    with pytest.raises(ValueError, match="only latency and energy"):
        AdaptedObjective(obj, {"accuracy": len})


def test_design_with_shots_never_worse_than_the_optimizer_under_the_adapted_objective(fast_run):
    opt = load_models(fast_run).optimizer
    obj, d = opt.objective_, _device_row()
    # A device whose big designs are much slower than predicted.
    replace = {"latency": lambda X: obj.metrics(X, d)["latency"] ** 1.5}
    lam = np.array([[0.01, 0.02], [0.1, 0.02], [1.0, 0.02]])
    designs, values, n = design_with_shots(opt, d, lam, replace)
    assert designs.shape == (3, SPACE.n_choices) and n >= 1
    adapted = AdaptedObjective(obj, replace)
    plain = opt.predict(np.column_stack([np.tile(d, (3, 1)), lam]))
    refs = adapted.references(np.tile(d, (3, 1)))
    v_plain = adapted.value_from_metrics(adapted.metrics(plain, d), lam, refs)
    np.testing.assert_allclose(values, adapted.value_from_metrics(
        adapted.metrics(designs, d), lam, refs), rtol=1e-6)
    assert np.all(values <= v_plain + 1e-9)


def test_design_with_shots_scores_a_small_space_whole():
    # NB201's 15,625 cells: the designs are the exact optimum of the adapted objective,
    # which the optimizer's proposals alone need not reach.
    from skedge.optimize import AmortizedDesignOptimizer, sample_optimizer_inputs
    from skedge.pipelines import make_accuracy_pipeline, make_performance_pipeline

    s = get_space("nb201")
    X = s.sample(300, 0)
    rng = np.random.RandomState(0)
    D = rng.rand(300, 12) + 1
    D[:, 0] = rng.randint(0, 5, 300)
    acc = make_accuracy_pipeline(s, hidden_layer_sizes=(16,), max_epochs=3,
                                 random_state=0).fit(X, 80 + (X == 3).sum(1))
    lat = make_performance_pipeline(s, hidden_layer_sizes=(16,), max_epochs=3, random_state=0
                                    ).fit(np.hstack([X, D]), np.exp((X == 3).sum(1) * 0.2 + D[:, 3]))
    opt = AmortizedDesignOptimizer(space=s, accuracy=acc, latency=lat, n_steps=20, n_augment=64,
                                   distill=64, random_state=0).fit(
        sample_optimizer_inputs(D[:20], 64, random_state=0))
    obj = opt.objective_
    # The device measures the 3x3 convolutions far slower than predicted.
    replace = {"latency": lambda Z: obj.metrics(Z, D[0])["latency"] * np.exp((Z == 3).sum(1))}
    lam = np.array([[0.003], [0.03], [0.3]])
    designs, values, n = design_with_shots(opt, D[0], lam, replace)
    assert n == s.size
    adapted = AdaptedObjective(obj, replace)
    every = s.enumerate()
    refs = adapted.references(D[:1])
    f = adapted.value_from_metrics(adapted.metrics(every, D[0]), lam[:, None, :], refs[:, None])
    np.testing.assert_array_equal(designs, every[f.argmin(axis=1)])
    np.testing.assert_allclose(values, f.min(axis=1), rtol=1e-6)
    _, proposed, n_proposed = design_with_shots(opt, D[0], lam, replace, max_exhaustive=0)
    assert n_proposed < s.size and np.all(values <= proposed + 1e-9)


def _shape_error(obj, encoded, designs, latency):
    blocks = blocks_of(obj.space)
    P = blocks.unpad(blocks.one_hot(torch.as_tensor(designs))).float()
    Z = {k: v.expand(len(P), -1) for k, v in encoded[0].items()}
    lp = np.log(obj.f_lat(P, encoded=Z).numpy())
    lt = np.log(latency)
    return float(np.sqrt(np.mean((lp - lp.mean() - lt + lt.mean()) ** 2)))


def test_adapted_encoding_takes_the_adapted_shape_inside_the_trained_box(fast_run):
    opt = load_models(fast_run).optimizer
    obj, d = opt.objective_, _device_row()
    base = obj.encode(d[None])
    # The optimizer's own predictions: the start already matches and is kept.
    same = adapted_encoding(opt, d, {"latency": lambda X: obj.metrics(X, d)["latency"]})
    for k, Z in base[0].items():
        torch.testing.assert_close(same[0][k], Z, atol=1e-4, rtol=0)
    # A device whose big designs are much slower than predicted.
    replace = {"latency": lambda X: obj.metrics(X, d)["latency"] ** 1.5}
    enc = adapted_encoding(opt, d, replace)
    held = SPACE.sample(300, random_state=7)  # not the probe designs
    truth = replace["latency"](held)
    assert _shape_error(obj, enc, held, truth) < _shape_error(obj, base, held, truth)
    for k, Z in enc[0].items():
        lo, hi, free = opt.device_encoding_range_[0][k]
        assert torch.all(Z >= lo - 1e-6) and torch.all(Z <= hi + 1e-6)
        torch.testing.assert_close(Z[:, ~free], base[0][k][:, ~free])  # the kind stays
    assert enc[1] is base[1] or all(torch.equal(enc[1][k], base[1][k]) for k in base[1])


def test_adapted_encoding_warns_nothing(fast_run):
    # A user of `skedge apply --shots` sees every warning, and torch warns only once per
    # process: check in a fresh one, with warnings as errors.
    code = (
        "import numpy as np; from numpy import nan; from skedge.persistence import load_models; "
        "from skedge.optimize._adapted import adapted_encoding; "
        f"opt = load_models({str(fast_run)!r}).optimizer; obj = opt.objective_; "
        f"d = np.array({_device_row().tolist()!r}); "
        "adapted_encoding(opt, d, {'latency': lambda X: obj.metrics(X, d)['latency'] ** 1.5})"
    )
    proc = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_apply_with_shots_adapts_and_says_so(fast_run, tmp_path, capsys):
    dev = tmp_path / "devices.json"
    dev.write_text(json.dumps([_phone(), _phone("other_phone")]))
    opt = load_models(fast_run).optimizer
    designs = SPACE.sample(10, random_state=1)
    # Measured: 4x the zero-shot prediction on the big designs, as slow on the small.
    pred = opt.objective_.metrics(designs, _device_row())["latency"]
    shots = _shots_file(tmp_path / "shots.csv", designs, 2.0 * pred ** 1.5)
    csv = tmp_path / "designs.csv"
    rc = main(["apply", "--models", str(fast_run), "--device", str(dev), "--shots", str(shots),
               "--lambdas", "0.01,0.1", "--out", str(csv)])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "my_phone: adapted from 10 shot(s)" in out.out
    assert "other_phone: adapted" not in out.out
    frame = pd.read_csv(csv)
    mine = frame[frame["device"] == "my_phone"]
    # The reported latency is the adapted prediction (larger than zero-shot here).
    zero = opt.objective_.metrics(SPACE.from_strings(mine["design"]), _device_row())["latency"]
    assert np.all(mine["latency_ms"].to_numpy() > zero)


def test_apply_takes_the_measurement_file_as_device_and_shots(fast_run, tmp_path):
    # `skedge measure` writes the device row on every design: the same file can describe
    # the device and hold its shots, and the user sees no warning on the way.
    designs = SPACE.sample(10, random_state=2)
    path = tmp_path / "my_phone.csv"
    _shots_file(path, designs, np.linspace(5.0, 20.0, 10))
    frame = pd.read_csv(path)
    for field, value in _phone().items():
        frame[field] = value
    frame.to_csv(path, index=False)
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-m", "skedge.cli", "apply", "--models", str(fast_run),
         "--device", str(path), "--shots", str(path), "--lambdas", "0.02"],
        capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "my_phone: adapted from 10 shot(s)" in proc.stdout
    assert "warning" not in proc.stderr.lower()
    # A device listed again with other features is still refused, naming the field.
    frame.loc[3, "peak_gflops"] = 900.0
    frame.to_csv(path, index=False)
    assert main(["apply", "--models", str(fast_run), "--device", str(path)]) == 2


def test_apply_shots_bad_input_exit_2(fast_run, tmp_path, capsys):
    dev = tmp_path / "dev.json"
    dev.write_text(json.dumps(_phone()))
    designs = SPACE.sample(3, random_state=0)

    def fails(shots, *needles):
        rc = main(["apply", "--models", str(fast_run), "--device", str(dev),
                   "--shots", str(shots)])
        err = capsys.readouterr().err
        assert rc == 2, err
        for needle in needles:
            assert needle in err, err
        assert "Traceback" not in err

    fails(_shots_file(tmp_path / "absent.csv", designs, [1.0, 2.0, 3.0], device="nobody"),
          "'nobody'", "--device")
    fails(_shots_file(tmp_path / "failed.csv", designs, ["", "", ""], status="error"),
          "no successful measurement")
    nb = get_space("nb201")
    fails(_shots_file(tmp_path / "nb201.csv", nb.sample(3, random_state=0), [1.0, 2.0, 3.0],
                      space=nb), "nb201", "ofa-quant")
    fails(tmp_path / "missing.csv", "does not exist")
