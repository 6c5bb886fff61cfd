"""The documentation builds without warnings and every gallery example runs.

The full build (``test_docs_build_runs_every_example``) executes all
``examples/plot_*.py`` through sphinx-gallery, in a copy of ``docs/`` and
``examples/`` under a temporary folder, so the checkout is left untouched.
"""

import ast
import importlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("plot_*.py"))
BUILD_OUTPUTS = ("_build", "auto_examples", "gen_modules", "generated")


def _docs_conf():
    """The API_MODULES list of docs/conf.py, read without executing the file."""
    tree = ast.parse((ROOT / "docs" / "conf.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "API_MODULES":
            return ast.literal_eval(node.value)
    raise AssertionError("docs/conf.py defines no API_MODULES")


def _env(**extra):
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1", PYTHONHASHSEED="0")
    # The build documents this checkout, not whichever skedge is installed (a worktree).
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env.update(extra)
    return env


def test_api_reference_covers_the_requested_modules():
    modules = [name for name, _ in _docs_conf()]
    for required in ("skedge", "skedge.spaces", "skedge.datasets", "skedge.devices",
                     "skedge.preprocessing", "skedge.pipelines", "skedge.differentiable",
                     "skedge.fewshot", "skedge.optimize", "skedge.models", "skedge.measure",
                     "skedge.evaluation", "skedge.workflow", "skedge.persistence"):
        assert required in modules
        assert importlib.import_module(required).__all__


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_have_a_title_and_fixed_seeds(path):
    text = path.read_text()
    doc = ast.get_docstring(ast.parse(text))
    assert doc, f"{path.name} needs a docstring with a title (sphinx-gallery header)"
    title, underline = doc.splitlines()[:2]
    assert set(underline) == {"="} and len(underline) >= len(title)
    assert "random_state=" in text
    assert "random_state=None" not in text


@pytest.mark.slow
def test_unseen_device_example_falls_back_to_the_simulator(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "plot_unseen_device.py")],
        cwd=tmp_path, env=_env(SKEDGE_DATA=str(tmp_path / "no_data_here")),
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Real data not found" in proc.stdout
    assert "Falling back to the simulator" in proc.stdout
    assert re.search(r"10 shots: Spearman 0\.\d+", proc.stdout)


@pytest.mark.slow
def test_docs_build_runs_every_example(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("numpydoc")
    pytest.importorskip("sphinx_gallery")
    pytest.importorskip("matplotlib")
    ignore = shutil.ignore_patterns(*BUILD_OUTPUTS, "__pycache__")
    shutil.copytree(ROOT / "docs", tmp_path / "docs", ignore=ignore)
    shutil.copytree(ROOT / "examples", tmp_path / "examples", ignore=ignore)
    out = tmp_path / "html"
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q",
         str(tmp_path / "docs"), str(out)],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=900, check=False,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-5000:]
    assert "WARNING" not in log and "ERROR" not in log, log[-5000:]

    # every example ran and produced at least one figure
    for path in EXAMPLES:
        name = path.stem
        assert (out / "auto_examples" / f"{name}.html").is_file()
        page = (tmp_path / "docs" / "auto_examples" / f"{name}.rst").read_text()
        assert re.search(r"Total running time of the script:\*\* \(\d+ minutes", page), name
        assert (tmp_path / "docs" / "auto_examples" / "images" / f"sphx_glr_{name}_001.png").is_file()

    # every public name is on the API page, with its own page or a pointer to it
    api = (tmp_path / "docs" / "generated" / "api.rst").read_text()
    for module_name, _ in _docs_conf():
        for name in importlib.import_module(module_name).__all__:
            if name.startswith("__"):
                continue
            assert re.search(rf"(^   {re.escape(name)}$)|(\.{re.escape(name)}`)", api, re.MULTILINE), (
                f"{module_name}.{name} is missing from the API reference")
    for page in ("skedge.AccuracyRegressor", "skedge.save_model", "skedge.NB201Space", "skedge.spaces.DesignSpace",
                 "skedge.optimize.pareto_front", "skedge.fewshot.FewShotAdapter"):
        assert (out / "generated" / f"{page}.html").is_file(), page
    for guide in ("method", "data", "profiling", "unseen_devices", "scaling", "persistence"):
        assert (out / "user_guide" / f"{guide}.html").is_file(), guide
    method = (out / "user_guide" / "method.html").read_text()
    assert r"\lambda_{lat} \frac{Lat(x; d)}{Lat_{ref}(d)}" in method  # the objective, as TeX
