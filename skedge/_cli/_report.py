"""Console output of the commands: progress lines, the tables of ``skedge run`` and ``apply``."""

from __future__ import annotations

import contextlib
import json
import time

import numpy as np
import pandas as pd

from ..devices import DEVICE_KINDS
from ..workflow import STAGE_DONE, design_summary

__all__ = [
    "Progress",
    "fmt_metric",
    "format_seconds",
    "legend",
    "next_steps",
    "predicted_columns",
    "print_results",
    "print_shots",
]


class Progress:
    """The ``progress`` callback of ``skedge run``: numbered stages with their wall time.

    A stage message prints as ``[i/n] text ...`` and stays open until its
    :data:`~skedge.workflow.STAGE_DONE` message adds the seconds; indented
    detail lines print as they come (inside a stage, they close its line,
    and ``done in`` then gets a line of its own). :meth:`step` times a stage of the command
    itself (saving) the same way.
    """

    def __init__(self, n_steps, quiet):
        self.n_steps, self.quiet, self.i = n_steps, quiet, 0
        self.open = self.detailed = False

    def __call__(self, message):
        if self.quiet:
            return
        if message.startswith(STAGE_DONE):
            seconds = message[len(STAGE_DONE):]
            # After detail lines the stage line is no longer the last one: say it is done.
            print(f"      {STAGE_DONE.strip()} {seconds}" if self.detailed else f" {seconds}",
                  flush=True)
            self.open = self.detailed = False
        elif message.startswith(" "):
            if self.open and not self.detailed:
                print(flush=True)
                self.detailed = True
            print(message, flush=True)
        else:
            self.i += 1
            self.open, self.detailed = True, False
            print(f"[{self.i}/{self.n_steps}] {message}", end="", flush=True)

    @contextlib.contextmanager
    def step(self, text):
        """The stage ``text`` of the command itself, timed as the workflow's stages are."""
        self(f"{text} ...")
        start = time.perf_counter()
        yield
        self(f"{STAGE_DONE}{time.perf_counter() - start:.1f} s")


def format_seconds(s):
    """A duration for a table: ``"98 µs"``, ``"1.1 ms"`` or ``"2.31 s"``."""
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    if s < 1.0:
        return f"{s * 1e3:.1f} ms"
    return f"{s:.2f} s"


def legend(space):
    """What the short design names of :func:`~skedge.workflow.design_summary` hold."""
    if space.name == "ofa":
        bits = ", mean weight/activation bits" if getattr(space, "quantize", False) else ""
        return f"design: r resolution, d blocks per stage, MMACs{bits}"
    if space.name == "nb201":
        return ("design: op per edge by node 1|2|3 (x none, s skip, 1 conv1x1, 3 conv3x3, "
                "p pool), MMACs")
    return "design: leading choices, MMACs"


def print_results(data, results, lam_en):
    """Print the optimizer-vs-search table of ``skedge run``, per unseen device, and its summary."""
    with_energy = "energy_mJ" in results
    space = data.space
    print(f"\nDesigns for unseen devices (predicted = what the models believe; "
          f"{'simulated' if data.source == 'simulator' else 'measured'} = the truth).")
    lam_text = "λ_lat" + (f" (with λ_en = {lam_en:g})" if with_energy else "")
    print("objective f = -acc/100 + λ_lat·lat/lat_ref(d)"
          + (" + λ_en·en/en_ref(d)" if with_energy else "")
          + f", minimized; {lam_text}:\n  a design as slow as a typical one on this device "
            "must buy 100·λ_lat accuracy points.")
    print(f"{legend(space)}.\ngap = f(optimizer) - f(search): > 0 when the search found a "
          "better design; time: per (device, λ).")
    cols = ["λ_lat", "method", "design", "acc %", "lat ms"] + (["en mJ"] if with_energy else [])
    cols += ["f", "gap", "time", "true acc %", "true lat ms"]
    cols += ["true en mJ"] if with_energy else []
    for device, block in results.groupby("device", sort=False):
        kind = block["kind"].iloc[0]
        fam = data.family.get(device, kind)
        print(f"\n{device}  ({kind}{'' if fam == kind else ', family ' + fam}; never seen "
              "in training)")
        table = predicted_columns(block, with_energy)
        table["method"] = block["method"].str.replace(r" \(.*\)", "", regex=True)
        table["gap"] = block["gap"].map(lambda v: "" if np.isnan(v) else f"{v:+.4f}")
        table["time"] = block["seconds"].map(format_seconds)
        table["true acc %"] = block["true_accuracy"].map("{:.1f}".format)
        table["true lat ms"] = block["true_latency_ms"].map(fmt_metric)
        if with_energy:
            table["true en mJ"] = block["true_energy_mJ"].map(fmt_metric)
        print(table[cols].to_string(index=False))
    opt = results[results["method"] == "optimizer"]
    srch = results[results["method"] != "optimizer"]
    speed = srch["seconds"].median() / max(opt["seconds"].median(), 1e-9)
    batched = results.attrs.get("batched_seconds")
    print(f"\nOptimizer vs {srch['method'].iloc[0]}: mean objective gap {opt['gap'].mean():+.4f} "
          f"(max {opt['gap'].max():+.4f}).")
    true_gap = opt["true_gap"].to_numpy()
    print(f"In truth ({'simulated' if data.source == 'simulator' else 'measured'} metrics): "
          f"the optimizer's design is better on {int((true_gap < -1e-12).sum())}, equal on "
          f"{int((np.abs(true_gap) <= 1e-12).sum())} and worse on "
          f"{int((true_gap > 1e-12).sum())} of {len(true_gap)} (device, λ); mean true "
          f"objective gap {true_gap.mean():+.4f}.")
    print(f"Time per (device, λ): optimizer {format_seconds(opt['seconds'].median())}"
          + (f" ({format_seconds(batched)} per row in one batched call)" if batched else "")
          + f" vs search {format_seconds(srch['seconds'].median())} ({speed:,.0f}x faster).")
    acc_err = np.mean(np.abs(results["accuracy"] - results["true_accuracy"]))
    err = [f"accuracy {acc_err:.1f} points"]
    for name in ("latency_ms", "energy_mJ"):
        if name in results:
            rel = np.abs(results[name] / results["true_" + name] - 1)
            err.append(f"{name.split('_')[0]} {np.median(rel) * 100:.0f}%")
    print("Prediction error on these designs (median over the table): " + ", ".join(err) + ".")


def print_shots(data, table):
    """Print the zero-shot vs k-shot table of ``skedge run`` and how often the shots helped."""
    k = int(table["shots"].max())
    truth = "simulated" if data.source == "simulator" else "measured"
    print(f"\nZero-shot vs {k}-shot designs for the unseen devices: {k} measured designs per "
          "device adapt its latency (and energy) predictor; the optimizer designs for the "
          "adapted device and the adapted predictions choose (as `skedge apply --shots`). "
          f"Metrics are {truth} (the "
          "truth); f is the true objective (lower is better).")
    shown = pd.DataFrame({
        "device": table["device"], "λ_lat": table["lambda_latency"].map("{:g}".format),
        "shots": table["shots"], "design": design_summary(data.space, data.space.from_strings(
            table["design"])),
        "true acc %": table["true_accuracy"].map("{:.1f}".format),
        "true lat ms": table["true_latency_ms"].map(fmt_metric)})
    if "true_energy_mJ" in table:
        shown["true en mJ"] = table["true_energy_mJ"].map(fmt_metric)
    shown["true f"] = table["true_objective"].map("{:.4f}".format)
    order = np.lexsort([table["shots"], table["lambda_latency"],
                        pd.factorize(table["device"])[0]])
    print(shown.iloc[order].to_string(index=False))
    f0 = table[table["shots"] == 0]["true_objective"].to_numpy()
    fk = table[table["shots"] == k]["true_objective"].to_numpy()
    print(f"{k} shots vs none: true objective better on {int((fk < f0 - 1e-12).sum())}, equal "
          f"on {int((np.abs(fk - f0) <= 1e-12).sum())}, worse on {int((fk > f0 + 1e-12).sum())} "
          f"of {len(f0)} (device, λ); mean change {np.mean(fk - f0):+.4f}.")


def predicted_columns(block, with_energy):
    """Printable λ, design and predicted metrics of a block of design rows (same index)."""
    shown = pd.DataFrame({
        "λ_lat": block["lambda_latency"].map("{:g}".format),
        "design": block["summary"],
        "acc %": block["accuracy"].map("{:.1f}".format),
        "lat ms": block["latency_ms"].map(fmt_metric),
    })
    if with_energy:
        shown["en mJ"] = block["energy_mJ"].map(fmt_metric)
    shown["f"] = block["objective"].map("{:.4f}".format)
    return shown


def fmt_metric(v):
    """A metric for a table: three significant digits below 1000, "nan" when unknown."""
    if not np.isfinite(v):
        return "nan"
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"


#: The device of the README's ``skedge apply`` example (unknown values: null).
EXAMPLE_DEVICE = {
    "device": "my_phone", "kind": "phone_cpu", "batch_size": 1, "precision_bits": 8,
    "peak_gflops": 300, "mem_bandwidth_gbs": 30, "compute_units": 4, "clock_ghz": 2.8,
    "on_chip_mb": 4, "mem_gb": 8, "tdp_w": None, "process_nm": 7, "release_year": 2020,
}


def next_steps(out):
    """The hint a run ends with: the device JSON ``skedge apply`` expects, and the command."""
    example = json.dumps(EXAMPLE_DEVICE)
    return (
        "Next: describe your device in a JSON file (unknown values: null; kind one of "
        f"{', '.join(DEVICE_KINDS)}), e.g. my_phone.json:\n"
        f"  {example}\n"
        "and get its designs:\n"
        f"  skedge apply --models {out} --device my_phone.json --lambdas 0.01,0.05,0.2"
    )
