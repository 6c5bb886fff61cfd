"""
Latency on a device the predictor never saw: zero-shot and few-shot
===================================================================

Train the cross-device latency predictor on NAS-Bench-201 latencies measured
on many devices, hold one piece of hardware out entirely, and predict its
latencies:

* **zero-shot** from its spec sheet alone (the spec pipeline);
* **few-shot** from its latencies on the space's 10 reference designs (the
  signature pipeline) plus :class:`~skedge.fewshot.FewShotAdapter`, a
  log-affine correction fitted on the same 10 measurements;
* **few-shot with the known devices**: the same 10 measurements also fit
  :class:`~skedge.fewshot.KnownDeviceMix`, the new device as a mix of the
  training devices' measured latencies, averaged with the network in log
  space;
* **... and the profile-matched devices**: :func:`~skedge.fewshot.profile_mix`
  finds the training devices whose measured latencies, over all the designs,
  correlate best with that blend, and a third part joins the average (as
  ``skedge evaluate-predictors`` does).

The real data is read from the data home (``SKEDGE_DATA``, see
:ref:`data`). When it is absent,
:func:`skedge.datasets.data_file` raises :class:`FileNotFoundError` and the
example says so and runs on the simulator instead.
"""

# %%
# Load the benchmark (real, or the simulator as a fallback)
# ---------------------------------------------------------
import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import spearmanr

from skedge.datasets import load_nb201, make_edge_benchmark, to_pairs
from skedge.devices import hardware_groups
from skedge.fewshot import FewShotAdapter, KnownDeviceMix, fit_log_affine, profile_mix
from skedge.pipelines import make_performance_pipeline

try:
    bench = load_nb201(sources=("help",))
    test_device = "pixel3"
    source = "measured (HELP)"
except FileNotFoundError as exc:
    print(f"Real data not found: {exc}")
    print("Falling back to the simulator (make_edge_benchmark).")
    bench = make_edge_benchmark("nb201", n_designs=3000, n_devices=20, random_state=0)
    test_device = bench.family.index[bench.family == "phone_big_cpu"][0]
    source = "simulated"

# Degenerate cells read ~0 ms on some devices: floor each device at its 1st percentile
# (as ``skedge evaluate-predictors`` does) so that latencies can be modelled on a log scale.
bench.latency = bench.latency.clip(lower=bench.latency.quantile(0.01), axis=1)
print(f"{len(bench.designs)} designs x {bench.latency.shape[1]} device settings ({source})")

# %%
# Hold out every setting of the test hardware
# -------------------------------------------
# Settings that share hardware (batch sizes of one GPU, or identical spec rows)
# are held out together, so nothing about the test device leaks into training.
groups = hardware_groups(bench.devices)
held_out = [d for d in bench.latency.columns if groups[d] == groups[test_device]]
train_devices = [d for d in bench.latency.columns if d not in held_out]
print("test device:", test_device, "| held out:", held_out)

# Pair rows of the training devices, with each device's 10 reference latencies
# (its signature) appended; a random subset keeps the example fast.
X, y, _ = to_pairs(bench, devices=train_devices, signature=bench.reference_idx)
rows = np.random.RandomState(0).choice(len(X), size=min(len(X), 12000), replace=False)
n_spec = bench.space.n_choices + bench.devices.shape[1]  # design + spec-sheet columns

small = dict(hidden_layer_sizes=(128, 128), max_epochs=20, batch_size=512,
             learning_rate=3e-3, random_state=0)
zero_shot = make_performance_pipeline(bench.space, **small).fit(X[rows, :n_spec], y[rows])
signature = make_performance_pipeline(bench.space, n_signature=10, **small).fit(X[rows], y[rows])

# %%
# Predict the held-out device
# ---------------------------
# Its rows come in design order. The few-shot model gets the 10 reference
# latencies (as the signature, and to fit the adapter); they are excluded from
# the designs it is scored on.
Xt, yt, _ = to_pairs(bench, devices=[test_device], signature=bench.reference_idx,
                     dropna=False)
ref = bench.reference_idx
adapted = FewShotAdapter(signature).fit(Xt[ref], yt[ref])

scored = np.setdiff1d(np.arange(len(yt)), ref)
scored = np.random.RandomState(1).choice(scored, size=min(len(scored), 3000), replace=False)

# The training devices' measured latencies, design by design, are the mix's
# inputs: fitted on the 10 reference designs, it predicts every other design.
known = bench.latency[train_devices].to_numpy()
mix = KnownDeviceMix().fit(known[ref], yt[ref])
rows = np.concatenate([ref, scored])  # the reference designs first
network = adapted.predict(Xt[rows])
mixed = mix.predict(known[rows])
blend = np.exp((np.log(network) + 2 * np.log(mixed)) / 3)

# The profile-matched devices keep their own scale: the three-part average is
# put on the new device's scale by an offset fitted on the reference designs.
matched = profile_mix(blend, known[rows])
three = np.exp((np.log(network) + np.log(mixed) + np.log(matched)) / 3)
offset, _ = fit_log_affine(three[: len(ref)], yt[ref], shrinkage=np.inf)
predictions = {
    "zero-shot (spec sheet)": zero_shot.predict(Xt[scored, :n_spec]),
    "few-shot (10 reference designs)": network[len(ref):],
    "few-shot + known-device mix": blend[len(ref):],
    "... + profile-matched devices": np.exp(offset) * three[len(ref):],
}

fig, axes = plt.subplots(1, 4, figsize=(16, 4.2), sharex=True, sharey=True)
for ax, (name, pred) in zip(axes, predictions.items()):
    rho = spearmanr(pred, yt[scored]).statistic
    within = np.mean(np.abs(pred / yt[scored] - 1) <= 0.10)
    print(f"{name:32s} Spearman {rho:.3f}  within ±10 %: {within:.1%}")
    ax.scatter(yt[scored], pred, s=4, alpha=0.5)
    lims = [yt[scored].min(), yt[scored].max()]
    ax.plot(lims, lims, "k--", lw=1)
    ax.set(xscale="log", yscale="log", title=f"{name}\nρ={rho:.2f}, within ±10 %: {within:.0%}",
           xlabel=f"{source} latency on {test_device} (ms)")
axes[0].set_ylabel("predicted latency (ms)")
fig.tight_layout()

# %%
# These small, fast models illustrate the workflow; their numbers are not the
# benchmark. With few training devices the signature pipeline sees few
# distinct signatures, which is why ``skedge evaluate-predictors`` trains it
# with device mixup and compares both paths with FLOPs and train-average
# baselines on every held-out piece of hardware (see :ref:`benchmarks`).
