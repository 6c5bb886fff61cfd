"""The end-to-end workflow as one library call: :func:`run_workflow`.

The steps: get a benchmark (the simulator, or the real NAS-Bench-201 data with
``data_home``) and hold out a few devices as *unseen*; fit the accuracy,
latency and energy predictors on the other devices; fit the amortized
optimizer; compare its designs with a per-device search on every (unseen
device, λ), and its zero-shot designs with the few-shot ones. Nothing is
printed and nothing is saved: stages go to an optional ``progress`` callback,
and the results come back as a :class:`WorkflowResult` (``skedge run`` prints
them and saves the models with :func:`skedge.persistence.save_models_folder`).
"""

from __future__ import annotations

import contextlib
import time

from sklearn.utils import Bunch

from ._checks import check_counts, check_lambda_energy, parse_lambdas, parse_test
from ._compare import compare
from ._data import nb201_data, simulated_data
from ._fit import fit_optimizer, fit_predictors
from ._shots import zero_vs_few_shot
from ._sizes import DEFAULT_LAMBDA_ENERGY, SIZES
from ._summary import space_key

__all__ = ["STAGE_DONE", "WorkflowResult", "run_workflow"]

#: How a finished stage is reported to ``progress``: this prefix, then ``"<seconds> s"``.
STAGE_DONE = "  done in "


class WorkflowResult(Bunch):
    """What :func:`run_workflow` returns (a :class:`~sklearn.utils.Bunch`).

    Attributes
    ----------
    data : Bunch
        The benchmark and its split: ``bench``, ``space``, ``train_designs``,
        ``train_devices``, ``test_devices``, ``truth(designs, devices)`` (true
        metrics), ``family``, ``source`` ("simulator" or "nb201"),
        ``has_energy`` and ``description``.
    models : Bunch
        The fitted ``accuracy``, ``latency`` and ``energy`` (None without
        energy) pipelines.
    optimizer : AmortizedDesignOptimizer
        The fitted optimizer.
    results : pandas.DataFrame
        Optimizer vs search, one row per (unseen device, λ, method): design,
        predicted and true metrics, objective, gap, seconds;
        ``results.attrs["batched_seconds"]`` is the optimizer's time per row
        in one batched call.
    shots : pandas.DataFrame
        Zero-shot vs 10-shot designs per (unseen device, λ), on true metrics.
    space : str
        The name of the design space (:func:`skedge.spaces.get_space` rebuilds it).
    lambdas : list of float
        The compared λ_lat.
    lambda_energy : float
        λ_en (used only with energy).
    random_state : int
    fast : bool
    seconds : dict
        Wall time of the stages ``data``, ``predictors``, ``optimizer``, ``compare``.
    """


class _Stages:
    """Reports the stages to a ``progress`` callback and times them."""

    def __init__(self, progress):
        self.progress = progress
        self.seconds = {}

    @contextlib.contextmanager
    def stage(self, key, text):
        self.say(f"{text} ...")
        start = time.perf_counter()
        yield
        self.seconds[key] = time.perf_counter() - start
        self.say(f"{STAGE_DONE}{self.seconds[key]:.1f} s")

    def say(self, text):
        if self.progress is not None:
            self.progress(text)


def run_workflow(*, space=None, data_home=None, n_designs=None, n_devices=None,
                 test_devices=None, lambdas=None, lambda_energy=DEFAULT_LAMBDA_ENERGY,
                 fast=False, random_state=0, progress=None):
    """Fit predictors and the amortized optimizer, and compare it with search on unseen devices.

    The library form of ``skedge run`` (without the saving): get a benchmark
    and hold out a few devices as unseen; fit the accuracy, latency and energy
    predictors on the other devices (zero-shot pipelines: a device is known by
    its spec sheet only); fit the
    :class:`~skedge.optimize.AmortizedDesignOptimizer` on (device, λ) rows
    sampled around the training devices; for each unseen device and λ,
    compare the optimizer's design with a per-device
    :class:`~skedge.optimize.SearchBaseline` on the same predicted objective,
    and its zero-shot designs with those chosen after 10 measured designs.
    Every input is checked before any long work.

    Parameters
    ----------
    space : str, default=None
        Design space: "ofa-quant" (the default), "ofa", "nb201" or "fbnet";
        "nb201" (the default) with ``data_home``.
    data_home : str or path-like, default=None
        Run on the real NAS-Bench-201 data in this folder instead of the
        simulator (see :func:`skedge.datasets.data_file`).
    n_designs : int, default=None
        Designs to train on (:data:`~skedge.workflow.SIZES`: 2000; 240 when ``fast``).
    n_devices : int, default=None
        Simulated device settings (40; 12 when ``fast``); ignored with ``data_home``.
    test_devices : int or list of str, default=None
        Unseen devices: a number (4; 2 when ``fast``), one per device family
        (simulator) or from a fixed list (NB201), or device names.
    lambdas : list of float, default=None
        Latency weights λ_lat to compare at (0.01, 0.05, 0.2).
    lambda_energy : float, default=0.02
        Energy weight λ_en (ignored without energy).
    fast : bool, default=False
        Tiny sizes: a smoke test of a few seconds, not a meaningful result.
    random_state : int, default=0
    progress : callable, default=None
        Called with one message string per event: a stage's description
        (ending in ``" ..."``) when it starts, :data:`STAGE_DONE` followed by
        its wall time (``"  done in 14.1 s"``) when it ends, and indented
        detail lines (the benchmark, the unseen devices, the zero-shot quality
        of the predictors). ``print`` shows a readable log.

    Returns
    -------
    result : WorkflowResult
        The data, the fitted models and optimizer, the comparison tables.

    Raises
    ------
    ValueError
        A bad value (λ, counts, unknown or repeated unseen devices, a space
        without real data).
    FileNotFoundError
        A real-data file is missing from the data home.

    Examples
    --------
    >>> from skedge.workflow import run_workflow
    >>> result = run_workflow(fast=True, n_designs=60, n_devices=6, test_devices=1,
    ...                       lambdas=[0.05], random_state=0)
    >>> result.data.test_devices, sorted(result.models)
    (['sim00_phone_big_cpu'], ['accuracy', 'energy', 'latency'])
    >>> list(result.results["method"])
    ['optimizer', 'search (evolution)']
    """
    sizes = SIZES["fast" if fast else "default"]
    real = data_home is not None
    space = space or ("nb201" if real else "ofa-quant")
    n_designs = sizes["n_designs"] if n_designs is None else n_designs
    n_devices = sizes["n_devices"] if n_devices is None else n_devices
    lambdas = parse_lambdas(lambdas, sizes["lambdas"])
    lam_en = check_lambda_energy(lambda_energy)
    test = parse_test(test_devices, sizes["n_test"])
    if not real:
        check_counts(n_designs, n_devices, test)
    stages = _Stages(progress)
    with stages.stage("data", "Loading NAS-Bench-201" if real else
                      f"Simulating {n_designs} designs x {n_devices} devices ({space})"):
        if real:
            data = nb201_data(space, data_home, n_designs, test, random_state)
        else:
            data = simulated_data(space, n_designs, n_devices, test, random_state)
    stages.say(f"      {data.description}")
    stages.say("      unseen devices: " + ", ".join(
        f"{d} ({data.family[d]})" for d in data.test_devices))
    models = fit_predictors(data, sizes, random_state, stages)
    optimizer = fit_optimizer(data, models, sizes, random_state, stages)
    with stages.stage("compare", f"Designing for {len(data.test_devices)} unseen devices x "
                      f"{len(lambdas)} λ: optimizer vs search"):
        results = compare(data, models, optimizer, lambdas, lam_en, sizes, random_state)
        shots = zero_vs_few_shot(data, models, optimizer, lambdas, lam_en, random_state)
    return WorkflowResult(data=data, models=models, optimizer=optimizer, results=results,
                          shots=shots, space=space_key(data.space), lambdas=lambdas,
                          lambda_energy=lam_en, random_state=random_state, fast=bool(fast),
                          seconds=stages.seconds)
