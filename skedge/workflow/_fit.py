"""The workflow's fitting: the accuracy/latency/energy predictors, then the amortized optimizer.

The λ of the optimizer's training rows are not the compared λ: they are drawn
log-uniform in :data:`~skedge.optimize.LAMBDA_RANGE` by
:func:`~skedge.optimize.sample_optimizer_inputs`.
"""

from __future__ import annotations

import contextlib
import io
import sys

import numpy as np
from scipy.stats import spearmanr
from sklearn.utils import Bunch

from ..datasets import to_pairs
from ..optimize import AmortizedDesignOptimizer, sample_optimizer_inputs
from ..pipelines import make_accuracy_pipeline, make_performance_pipeline
from ._data import train_view

__all__ = ["fit_optimizer", "fit_predictors"]


def fit_predictors(data, sizes, random_state, stages):
    """The accuracy, latency and (with energy) energy pipelines, fitted on the training devices.

    Reports, after the fit, the zero-shot rank correlation and median error of
    the latency (and energy) predictions on all designs of each unseen device.
    """
    b, space = data.bench, data.space
    rows = data.train_designs
    X, y, _ = train_view(data, "latency")
    what = "accuracy, latency and energy" if data.has_energy else "accuracy and latency"
    with stages.stage("predictors", f"Fitting {what} predictors on "
                      f"{len(data.train_devices)} devices "
                      f"({len(rows)} designs, {len(y):,} pairs)"):
        acc = make_accuracy_pipeline(space, random_state=random_state, **sizes["accuracy"])
        acc.fit(b.designs[rows], b.accuracy[rows])
        lat = make_performance_pipeline(space, random_state=random_state,
                                        **sizes["performance"])
        lat.fit(X, y)
        en = None
        if data.has_energy:
            Xe, ye, _ = train_view(data, "energy")
            en = make_performance_pipeline(space, random_state=random_state,
                                           **sizes["performance"])
            en.fit(Xe, ye)
    # Zero-shot quality on the unseen devices: all their measured designs.
    lines = []
    for d in data.test_devices:
        parts = []
        for name, est, unit in (("latency", lat, "ms"), ("energy", en, "mJ")):
            if est is None:
                continue
            Xt, yt, _ = to_pairs(b, devices=[d], target=name)
            p = est.predict(Xt)
            rho = spearmanr(p, yt)[0]
            err = np.median(np.abs(p / yt - 1)) * 100
            parts.append(f"{name} rank corr {rho:.2f}, median error {err:.0f}%")
        lines.append(f"      {d}: " + "; ".join(parts))
    stages.say("      zero-shot predictions on the unseen devices (all their designs):")
    for line in lines:
        stages.say(line)
    return Bunch(accuracy=acc, latency=lat, energy=en)


def fit_optimizer(data, models, sizes, random_state, stages):
    """The amortized optimizer, fitted on (device, λ) rows sampled around the training devices.

    The fit is the longest stage of the workflow: with a ``progress`` callback,
    each of its own stages (networks, labelling, students) is reported as an
    indented line when it ends.
    """
    n_lambdas = 2 if models.energy is not None else 1
    params = dict(sizes["optimizer"])
    train = data.bench.devices.loc[data.train_devices]
    with stages.stage("optimizer", f"Fitting the amortized optimizer on (device, λ) rows "
                      f"around {len(train)} training devices ({params['n_steps']} steps)"):
        rows = sample_optimizer_inputs(train, sizes["n_optimizer_rows"], n_lambdas=n_lambdas,
                                       random_state=random_state)
        opt = AmortizedDesignOptimizer(space=data.space, accuracy=models.accuracy,
                                       latency=models.latency, energy=models.energy,
                                       random_state=random_state,
                                       verbose=int(stages.progress is not None), **params)
        with contextlib.redirect_stdout(_Lines(stages.say, "[AmortizedDesignOptimizer] ")):
            opt.fit(rows)
        # The saved optimizer is quiet wherever it is loaded and refitted.
        opt.set_params(verbose=0)
    return opt


class _Lines(io.TextIOBase):
    """A text stream that hands each complete line, indented, to ``say``."""

    def __init__(self, say, prefix):
        self.say, self.prefix, self.pending = say, prefix, ""
        # Created before stdout is redirected here: ``say`` may print, and must not
        # print back into this stream.
        self.stdout = sys.stdout

    def writable(self):
        return True

    def write(self, text):
        *lines, self.pending = (self.pending + text).split("\n")
        for line in lines:
            if line.strip():
                with contextlib.redirect_stdout(self.stdout):
                    self.say("      " + line.removeprefix(self.prefix).strip())
        return len(text)
