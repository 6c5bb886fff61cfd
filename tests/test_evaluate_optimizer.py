"""evaluate-optimizer: summary keys and value ranges (tiny settings; real NB201 + simulator)."""

import numpy as np
import pandas as pd
import pytest

from skedge.cli import main
from skedge.evaluation import evaluate_optimizer
from skedge.evaluation._optimizer import _not_worse

TINY_OPT = dict(n_steps=30, n_augment=128, hidden_layer_sizes=(16,), n_estimators=2,
                distill=256)
TINY_PRED = dict(max_epochs=2, hidden_layer_sizes=(16,))


def test_nb201_summary(data_home):
    summary, records = evaluate_optimizer(
        "nb201", data_home=data_home, test_devices=["pixel3", "gold_6240"], n_lambdas=3,
        n_train_designs=200, optimizer_params=TINY_OPT, predictor_params=TINY_PRED, verbose=0,
    )
    for key in ("regret_pred_median", "regret_true_median", "regret_true_p90",
                "hv_ratio_true", "designs_per_second", "regret_true_median_0shots",
                "devices_not_worse_0shots"):
        assert key in summary
    # The forward pass and the designs adapted to the signature cells, per device and λ.
    assert len(records) == 2 * 3 * 2
    assert sorted({(r["adapted"], r["shots"]) for r in records}) == [(False, 0), (True, 0)]
    for r in records:
        assert 0 <= r["regret_pred"] <= 1 and 0 <= r["regret_true"] <= 1
        assert 0 < r["hv_ratio_true"] <= 1 + 1e-9
    assert summary["designs_per_second"] > 0
    # NB201 is scored whole under the adapted latency: no regret under its predictions.
    assert all(r["regret_pred"] == 0 for r in records if r["adapted"])
    # Every cell measured: one figure per (device, λ), whatever the design path.
    oracle = {}
    for r in records:
        assert 0 <= r["regret_true_latency_oracle"] <= 1
        assert oracle.setdefault((r["device"], r["lambda"]), r["regret_true_latency_oracle"]) \
            == r["regret_true_latency_oracle"]
    assert 0 <= summary["regret_true_latency_oracle_median"] \
        <= summary["regret_true_latency_oracle_p90"] <= 1


def test_nb201_shots(data_home):
    summary, records = evaluate_optimizer(
        "nb201", data_home=data_home, test_devices=["pixel3"], n_lambdas=3, shots=(0, 5),
        shot_draws=2, n_train_designs=200, optimizer_params=TINY_OPT, predictor_params=TINY_PRED, verbose=0,
    )
    for key in ("regret_true_median", "regret_true_median_5shots", "hv_ratio_true_5shots",
                "seconds_per_design_5shots", "devices_not_worse_5shots",
                "devices_not_worse_5shots_vs_0shots", "devices_floor_not_worse_5shots_vs_0shots"):
        assert key in summary
    assert summary["devices_not_worse_5shots"].startswith(("0/1", "1/1"))
    assert summary["devices_floor_not_worse_5shots_vs_0shots"].startswith(("0/1", "1/1"))
    # A worse device is named with its change, so noise can be told from a loss.
    if summary["devices_not_worse_5shots"].startswith("0/1"):
        assert "worse: pixel3 +" in summary["devices_not_worse_5shots"]
    assert sorted({(r["adapted"], r["shots"]) for r in records}) == [
        (False, 0), (True, 0), (True, 5)] and len(records) == 3 + 3 + 2 * 3
    # Two independent draws of the 5 random cells; the signature cells alone have one.
    assert sorted({(r["shots"], r["draw"]) for r in records if r["adapted"]}) == [
        (0, 0), (5, 0), (5, 1)]
    for r in records:
        assert 0 <= r["regret_true"] <= 1 and 0 < r["hv_ratio_true"] <= 1 + 1e-9


def test_not_worse_names_the_worse_devices():
    regret = pd.Series({"a50": 0.0021, "pixel3": 0.0066})
    baseline = pd.Series({"pixel3": 0.0076, "a50": 0.0017})
    assert _not_worse(regret, baseline) == \
        "1/2 (mean true regret per device; worse: a50 +0.0004)"
    assert _not_worse(baseline, baseline) == "2/2 (mean true regret per device)"
    # A change too small for four decimals still shows its size.
    assert _not_worse(baseline + 2e-5, baseline).endswith("worse: pixel3 +2e-05; a50 +2e-05)")


def test_shots_bad_input(data_home, capsys):
    with pytest.raises(ValueError, match="nb201"):
        evaluate_optimizer("ofa-quant", shots=(0, 10), verbose=0)
    assert main(["evaluate-optimizer", "--shots", "0,x"]) == 2
    assert "--shots" in capsys.readouterr().err
    assert main(["evaluate-optimizer", "--space", "ofa-quant", "--shots", "0,10"]) == 2
    assert "nb201" in capsys.readouterr().err
    with pytest.raises(ValueError, match="shot_draws must be a positive integer, got 0"):
        evaluate_optimizer("nb201", shots=(0, 10), shot_draws=0, verbose=0)
    assert main(["evaluate-optimizer", "--shot-draws", "0"]) == 2
    assert "--shot-draws must be at least 1, got 0" in capsys.readouterr().err
    assert main(["evaluate-optimizer", "--space", "fbnet", "--finetune", "-0.5"]) == 2
    assert "--finetune must be at least 0, got -0.5" in capsys.readouterr().err


@pytest.mark.parametrize("space", ["ofa-quant", "fbnet"])
def test_simulated_summary(space):
    summary, records = evaluate_optimizer(
        space, n_lambdas=2, n_designs=150, n_devices=10, optimizer_params=TINY_OPT,
        predictor_params=TINY_PRED, search_params=dict(population_size=20, n_cycles=40, sample_size=5, n_offspring=5),
        verbose=0,
    )
    assert {"gap_vs_evolution", "speedup_vs_evolution", "designs_per_second"} <= set(summary)
    assert summary["speedup_vs_evolution"] > 1
    assert summary["space"] == f"{space} (simulated)"
    assert len(records) == 5 * 2
    # Scored on the simulator's truth too: finite, and consistent with the records.
    t_opt = np.array([r["f_true_optimizer"] for r in records])
    t_evo = np.array([r["f_true_evolution"] for r in records])
    assert np.isfinite(t_opt).all() and np.isfinite(t_evo).all()
    assert summary["true_objective_optimizer"] == pytest.approx(t_opt.mean())
    assert summary["true_not_worse_than_evolution"].startswith(f"{(t_opt <= t_evo).sum()}/10 ")
    # Each device's true objectives lie between -1 (perfect accuracy, free) and a
    # cost the λ terms bound: the normalization is per device, not per design.
    lam = np.array([[r["lambda_latency"], r["lambda_energy"]] for r in records])
    assert (t_opt > -1).all() and (t_opt < lam.sum(1) * 100).all()


def test_bad_input(data_home):
    with pytest.raises(ValueError, match="unknown test device"):
        evaluate_optimizer("nb201", data_home=data_home, test_devices=["nope"], verbose=0)
    with pytest.raises(ValueError, match="n_lambdas"):
        evaluate_optimizer("nb201", data_home=data_home, n_lambdas=1, verbose=0)
    with pytest.raises(ValueError, match="unknown design space"):
        evaluate_optimizer("resnet", verbose=0)


def test_cli_help_lists_the_command(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate-optimizer", "--help"])
    assert "--n-lambdas" in capsys.readouterr().out
