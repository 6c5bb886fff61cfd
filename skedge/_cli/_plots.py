"""The figures of ``skedge run``: one Pareto-front PNG per unseen device (matplotlib, optional)."""

from __future__ import annotations

import numpy as np

from ..devices import DEVICE_FEATURES
from ..optimize import pareto_front, plot_pareto_front
from ..workflow import sweep_lambdas

__all__ = ["label_lambdas", "log_ticks", "plot_fronts"]


def _truth_of_front(data, designs, device):
    try:
        return data.truth(designs, [device] * len(designs))
    except KeyError:  # pragma: no cover - every NB-201 cell is measured
        return None


def plot_fronts(out, data, optimizer, results, lam_en):
    """One PNG per unseen device: the predicted front of a λ_lat sweep and its designs' truth."""
    try:
        import matplotlib  # optional: the 'plot' extra; without it the run saves no plots

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt  # optional: the 'plot' extra
        import matplotlib.ticker  # optional: the 'plot' extra
    except ImportError:
        return []
    obj = optimizer.objective_
    with_energy = obj.n_lambdas == 2
    for stale in out.glob("pareto_*.png"):  # plots of an earlier run's devices
        stale.unlink()
    lambdas = sweep_lambdas(with_energy, lam_en)
    files = []
    for device in data.test_devices:
        d = data.bench.devices.loc[device, list(DEVICE_FEATURES)].to_numpy(np.float64)
        front = pareto_front(optimizer, d, lambdas=lambdas)
        fig, ax = plt.subplots(figsize=(6, 4.2))
        plot_pareto_front(front, ax=ax, label="optimizer front (predicted)")
        true = _truth_of_front(data, data.space.from_strings(front["design"]), device)
        if true is not None:
            ax.scatter(true["latency"], true["accuracy"], facecolors="none", edgecolors="C0",
                       label="same designs (true)", zorder=2)
        mine = results[results["device"] == device]
        srch = mine[mine["method"] != "optimizer"]
        ax.scatter(srch["latency_ms"], srch["accuracy"], marker="x", color="C3", zorder=4,
                   label="search designs (predicted)")
        label_lambdas(ax, srch["latency_ms"], srch["accuracy"], srch["lambda_latency"],
                      color="C3")
        label_lambdas(ax, front["latency"], front["accuracy"], front["lambda_latency"])
        ax.set_xscale("log")
        # Plain numbers at 1-2-5 steps (finer when few fit): a front often spans less
        # than a decade, where log ticks read "8x10^0" or leave no label at all.
        ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(log_ticks(*ax.get_xlim())))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("latency (ms)")
        ax.set_ylabel("accuracy (%)")
        title = f"{device} (unseen)"
        if with_energy:
            title += f", λ_en = {lam_en:g}"
        ax.set_title(title)
        ax.legend(fontsize=7)
        fig.tight_layout()
        name = f"pareto_{device}.png"
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        files.append(name)
    return files


def label_lambdas(ax, latency, accuracy, lambdas, *, color="C0", max_labels=8):
    """Write λ_lat next to plotted points (at most ``max_labels``, spread along latency)."""
    order = np.argsort(np.asarray(latency, dtype=np.float64), kind="stable")
    step = max(1, -(-len(order) // max_labels))
    for i in order[::step]:
        ax.annotate(f"λ={np.asarray(lambdas)[i]:.2g}",
                    (np.asarray(latency)[i], np.asarray(accuracy)[i]),
                    xytext=(4, -9), textcoords="offset points", fontsize=6, color=color)


def log_ticks(low, high):
    """Tick values for a log axis from ``low`` to ``high``: 1-2-5 steps, finer when few fit.

    Examples
    --------
    >>> from skedge._cli._plots import log_ticks
    >>> log_ticks(4.1, 31.0)
    [5.0, 10.0, 20.0]
    >>> log_ticks(4.4, 7.6)
    [5.0, 6.0, 7.0]
    """
    exponents = range(int(np.floor(np.log10(low))) - 1, int(np.ceil(np.log10(high))) + 1)
    for mantissas in ((1, 2, 5), (1, 1.5, 2, 3, 5, 7), tuple(range(1, 10)),
                      tuple(np.arange(10, 100) / 10)):
        ticks = [float(f"{m * 10.0**e:.6g}") for e in exponents for m in mantissas]
        ticks = [t for t in ticks if low <= t <= high]
        if len(ticks) >= 3:
            return ticks
    return ticks
