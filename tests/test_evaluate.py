"""evaluate-predictors: record layout, held-out hardware and bad input (real NB201 data)."""

import json

import numpy as np
import pytest

from skedge.cli import main
from skedge.evaluate import evaluate_predictors, load_benchmark, signature_designs

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


def test_diagnostics_report_the_oracle_mix(data_home):
    recs = evaluate_predictors(
        "nb201", data_home=data_home, test_devices=["gold_6240"], shots=(10,),
        n_train_designs=100, model_params=TINY, diagnostics=True, verbose=0,
    )
    by = {r["method"]: r for r in recs}
    assert {"skedge", "skedge_signature", "skedge_mix", "skedge_profile_mix", "oracle_mix",
            "linear_mix"} <= set(by)
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
    from skedge import evaluate

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
        (dict(test_devices=["no_such_phone"]), "unknown test device 'no_such_phone'"),
        (dict(shots=(5,)), "shots"),
        (dict(blend=1.5), "blend must be in"),
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


def test_training_rows_cover_every_measured_design_by_default(data_home):
    from skedge.evaluate import _floor, _train_rows

    bench = load_benchmark("nb201", data_home=data_home)
    logy = np.log(_floor(bench.latency))
    train = ["gold_6240", "eagle_cpu_855", "pixel3"]
    sig = signature_designs(bench)
    rng = np.random.RandomState(0)
    (X0, _), (Xs, ys) = _train_rows(bench, logy, train, sig, None, rng, n_mix=2)
    n_measured = sum(int(logy[d].notna().sum()) for d in train)  # 15,625 + 1,999 + 15,625
    assert len(X0) == n_measured
    # Mixup devices mix the two fully measured ones, on half of the cells each.
    assert len(Xs) == n_measured + 2 * (15625 // 2)
    assert np.isfinite(ys).all() and (ys > 0).all()
    (X0, _), _ = _train_rows(bench, logy, train, sig, 100, rng, n_mix=0)
    assert len(X0) <= 3 * (100 + len(sig))
