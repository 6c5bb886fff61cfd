"""Shared test fixtures: the real data home (skipped with a reason when absent), the CLI,
a models folder as `skedge run` wrote it before the safe format (joblib, manifest version 1)."""

import contextlib
import io
import json
import os
import shutil

import joblib
import numpy as np
import pytest

from skedge.datasets import get_data_home
from skedge.persistence import load_models


def _data_home_or_skip():
    home = get_data_home()
    if (home / "nb201" / "archs.csv").is_file():
        return home
    msg = (
        f"real data not found at {home}: set SKEDGE_DATA to the folder holding "
        "nb201/, fbnet/, ofa/ and devices/ to run the real-data tests"
    )
    if os.environ.get("SKEDGE_REQUIRE_DATA"):
        pytest.fail(msg + " (SKEDGE_REQUIRE_DATA is set, as in CI)")
    pytest.skip(msg)


@pytest.fixture(scope="session")
def data_home():
    """Path of the real data home; skips the test when the data is absent."""
    return _data_home_or_skip()


@pytest.fixture(scope="session")
def synthetic_objective():
    """Tiny predictors on synthetic NB201 data (3x3 convs accurate and slow) and their Objective.

    Returns ``(space, accuracy, latency, objective, D)`` with ``D`` the 400
    synthetic device rows the latency predictor was fitted on.
    """
    from skedge.optimize import Objective
    from skedge.pipelines import make_accuracy_pipeline, make_performance_pipeline
    from skedge.spaces import NB201Space

    # One small network each, in batches of 256 (the accuracy predictor's defaults
    # are three networks and batches of 128): a fixed, fast synthetic landscape.
    tiny = dict(hidden_layer_sizes=(16,), max_epochs=5, batch_size=256, n_estimators=1,
                random_state=0)
    s = NB201Space()
    X = s.sample(400, 0)
    rng = np.random.RandomState(0)
    D = rng.rand(400, 12) + 1
    D[:, 0] = rng.randint(0, 5, 400)
    n3, n1, n0 = (X == 3).sum(1), (X == 2).sum(1), (X == 0).sum(1)
    acc = make_accuracy_pipeline(s, **tiny).fit(X, 80 + 2 * n3 + n1 - 2 * n0)
    lat = make_performance_pipeline(s, **tiny).fit(
        np.hstack([X, D]), np.exp(0.3 * n3 + 0.1 * n1 + D[:, 3])
    )
    return s, acc, lat, Objective(s, acc, lat), D


@pytest.fixture
def forbid_measuring(monkeypatch):
    """Fail a test that builds a network (``skedge.models.build_model``); returns the calls.

    For checks that bad input is refused before anything is measured.
    """
    import skedge.models

    calls = []

    def boom(*args, **kwargs):
        calls.append(args)
        raise AssertionError("a network was built before the input was checked")

    monkeypatch.setattr(skedge.models, "build_model", boom)
    return calls
def run_cli(argv):
    """``skedge.cli.main(argv)`` with stdout and stderr captured: ``(rc, stdout, stderr)``.

    Usable in module-scoped fixtures, where ``capsys`` is not.
    """
    from skedge.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="session")
def cli():
    """The :func:`run_cli` function."""
    return run_cli


def as_joblib_v1_folder(models, dest):
    """Copy the models folder ``models`` to ``dest`` as `skedge run` wrote it before the safe
    format: one joblib pickle per model and a version 1 manifest (no ``model_format``)."""
    loaded = load_models(models)
    manifest = dict(loaded.manifest, format_version=1)
    del manifest["model_format"]
    manifest["files"] = {k: f"{k}.joblib" for k in manifest["files"]}
    dest.mkdir(parents=True)
    for key, name in manifest["files"].items():
        joblib.dump(loaded[key], dest / name)
    for extra in ("results.csv", "shots.csv"):
        if (models / extra).is_file():
            shutil.copy(models / extra, dest / extra)
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return dest


@pytest.fixture(scope="session")
def joblib_v1_folder():
    """The :func:`as_joblib_v1_folder` function."""
    return as_joblib_v1_folder
