"""evaluate-predictors: record layout, held-out hardware and bad input (real NB201 data)."""

import json

import numpy as np
import pytest

from skedge.cli import main
from skedge.evaluation import evaluate_predictors, load_benchmark, signature_designs

TINY = dict(hidden_layer_sizes=(16,), max_epochs=2, batch_size=1024)


@pytest.fixture(scope="module")
def records(data_home):
    return evaluate_predictors(
        "nb201", data_home=data_home, test_devices=["gold_6240", "1080ti_32"],
        shots=(0, 10), n_train_designs=150, model_params=TINY, verbose=0,
    )


def test_records_layout_and_methods(records):
    keys = {"device", "shots", "method", "spearman", "mape", "within_10pct"}
    assert all(keys <= set(r) for r in records)
    got = {(r["device"], r["shots"], r["method"]) for r in records}
    for dev in ("gold_6240", "1080ti_32"):
        assert {(dev, 0, m) for m in ("skedge", "flops", "train_average")} <= got
        assert {(dev, 10, m) for m in ("skedge", "flops", "train_average", "linear_mix")} <= got
    for r in records:
        assert -1 <= r["spearman"] <= 1 and 0 <= r["within_10pct"] <= 1 and r["mape"] >= 0
    # All designs of the device are scored except the k granted ones.
    n = {(r["device"], r["shots"]): r["n_designs"] for r in records}
    assert n[("gold_6240", 0)] == 15625 and n[("gold_6240", 10)] == 15615


def test_a_device_scored_alone_reproduces_the_joint_run(records, data_home):
    alone = evaluate_predictors(
        "nb201", data_home=data_home, test_devices=["gold_6240"],
        shots=(0, 10), n_train_designs=150, model_params=TINY, verbose=0,
    )
    joint = {(r["device"], r["shots"], r["method"]): r for r in records}
    assert alone
    for r in alone:
        same = joint[(r["device"], r["shots"], r["method"])]
        for key in ("spearman", "mape", "within_10pct", "n_designs"):
            assert r[key] == pytest.approx(same[key], rel=1e-9), (r, key)


def test_diagnostics_report_the_oracle_mix(data_home, monkeypatch):
    from skedge.evaluation import _predictors as evaluate

    # Scoring the networks alone must leave the fold model's parameters as they were.
    kept = []
    score = evaluate.score_fold

    def spy(model, job, **ctx):
        before = (model.blend, model.part_weights)
        out = score(model, job, **ctx)
        kept.append(before == (model.blend, model.part_weights))
        return out

    monkeypatch.setattr(evaluate, "score_fold", spy)
    recs = evaluate_predictors(
        "nb201", data_home=data_home, test_devices=["gold_6240"], shots=(10,),
        n_train_designs=100, model_params=TINY, diagnostics=True, n_jobs=1, verbose=0,
    )
    assert kept == [True]
    by = {r["method"]: r for r in recs}
    assert {"skedge", "skedge_networks", "oracle_mix", "linear_mix"} <= set(by)
    # Fitted on every measured cell, the mix of the other CPUs explains gold_6240 well
    # (Spearman 0.962 measured with the full data).
    assert by["oracle_mix"]["spearman"] > 0.9


def test_the_granted_designs_come_from_every_device(data_home):
    bench = load_benchmark("nb201", data_home=data_home)
    sig = signature_designs(bench)
    assert len(sig) == 10 and bench.latency.iloc[sig].notna().all().all()
    # The one NB201 reference cell that OneProxy also measured is kept.
    assert 1462 in bench.design_ids[sig]


def test_same_hardware_is_held_out_together(data_home, monkeypatch):
    from skedge.evaluation import _predictors as evaluate

    seen = {}

    def spy(job, ctx, threads):
        seen.update(job)
        return [], 0.0

    monkeypatch.setattr(evaluate, "_run_fold", spy)
    evaluate_predictors("nb201", data_home=data_home, test_devices=["1080ti_1"], verbose=0)
    assert set(seen["held"]) == {"1080ti_1", "1080ti_32", "1080ti_256", "eagle_gtx"}
    assert not set(seen["held"]) & set(seen["train"])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(test_devices=[]), "empty"),
        (dict(test_devices=["no_such_phone"]), "test_devices: unknown device 'no_such_phone'"),
        (dict(shots=(-1,)), "shots"),
        (dict(train_devices=["gold_6240", "nope"]), "train_devices: unknown device 'nope'"),
        (dict(model_params={"blend": 1.5}), "'blend' parameter"),
    ],
)
def test_bad_input(data_home, kwargs, match):
    with pytest.raises(ValueError, match=match):
        evaluate_predictors("nb201", data_home=data_home, verbose=0, **kwargs)


def test_cli_writes_json(data_home, tmp_path, capsys):
    out = tmp_path / "r.json"
    code = main([
        "evaluate-predictors", "--space", "nb201", "--data-home", str(data_home),
        "--test-devices", "gold_6240", "--shots", "10", "--n-train-designs", "100",
        "--epochs", "1", "--n-jobs", "1", "--json", str(out), "--quiet",
    ])
    assert code == 0
    recs = json.loads(out.read_text())
    assert {r["method"] for r in recs} == {"skedge", "flops", "train_average", "linear_mix"}
    assert np.isfinite([r["spearman"] for r in recs]).all()
    assert "skedge:rho" in capsys.readouterr().out


def test_the_model_is_the_public_estimator_fitted_on_the_training_devices(data_home):
    """The evaluation's `skedge` is CrossDeviceRegressor with its defaults, nothing else."""
    from skedge import CrossDeviceRegressor
    from skedge.evaluation import fit_fold_model

    bench = load_benchmark("nb201", data_home=data_home)
    sig = signature_designs(bench)
    train = ["gold_6240", "eagle_cpu_855", "pixel3"]
    job = dict(held=["silver_4114"], train=train, reported=["silver_4114"], seed=3)
    model = fit_fold_model(job, bench=bench, sig_idx=sig, shots=(10,), model_params=TINY,
                           n_train_designs=100)
    assert isinstance(model, CrossDeviceRegressor)
    assert model.device_names_ == train
    np.testing.assert_array_equal(model.reference_designs_, bench.designs[sig])
    defaults = CrossDeviceRegressor().get_params()
    changed = {k for k, v in model.get_params().items()
               if not (isinstance(v, np.ndarray) or v == defaults[k])}
    # Only the fold's data, its seed, speed settings and the test-only TINY networks differ.
    assert changed <= {"space", "zero_shot", "random_state", "n_train_designs", "n_threads",
                       *TINY}, changed
    # The known-device table keeps every measurement, however few the networks saw.
    assert np.isfinite(model.measured_log_).sum() == sum(
        int(bench.latency[d].notna().sum()) for d in train)


def test_learning_curve_and_train_devices(data_home):
    recs = evaluate_predictors(
        "nb201", data_home=data_home, test_devices=["gold_6240"], shots=(0, 5, 10, 30),
        train_devices=["silver_4114", "silver_4210r", "pixel3", "1080ti_1"],
        n_train_designs=100, model_params=TINY, verbose=0,
    )
    sk = {r["shots"]: r for r in recs if r["method"] == "skedge"}
    assert sorted(sk) == [0, 5, 10, 30]
    assert {r["n_train_devices"] for r in recs} == {4}
    assert sk[30]["n_designs"] == 15625 - 30


def test_too_few_shared_designs_says_what_to_do(data_home, tmp_path):
    """An extra device measured on a few designs only gets a message with a way out."""
    bench = load_benchmark("nb201", data_home=data_home)
    few = bench.latency.iloc[:, :3].copy()
    few.iloc[5:, 2] = np.nan  # the third device measured on 5 designs only
    bench.latency = few
    with pytest.raises(ValueError, match="include-reference"):
        signature_designs(bench)
