"""
Latency on a device the predictor never saw: zero-shot and few-shot
===================================================================

Fit :class:`~skedge.CrossDeviceRegressor` on NAS-Bench-201 latencies measured
on many devices, with one piece of hardware held out entirely, then adapt it
to the held-out device:

* **zero-shot** from its spec-sheet row alone;
* **10 shots**: its latencies on the space's 10 reference designs;
* **100 shots**: the same plus 90 random designs, where the shot head starts
  to move the ranking towards what the device itself measured.

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

from skedge import CrossDeviceRegressor
from skedge.datasets import load_nb201, make_edge_benchmark, to_pairs
from skedge.model_selection import LeaveOneHardwareOut

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
print(f"{len(bench.designs)} designs x {bench.latency.shape[1]} device settings ({source})")

# %%
# Hold out every setting of the test hardware
# -------------------------------------------
# Settings that share hardware (batch sizes of one GPU, or identical spec rows)
# are held out together, so nothing about the test device leaks into training.
hardware = LeaveOneHardwareOut(devices=bench.devices).hardware_of(bench.latency.columns)
held_out = [d for d in bench.latency.columns if hardware[d] == hardware[test_device]]
train_devices = [d for d in bench.latency.columns if d not in held_out]
print("test device:", test_device, "| held out:", held_out)

# Small, fast networks for the gallery (the defaults train on every design).
X, y, groups = to_pairs(bench, devices=train_devices)
model = CrossDeviceRegressor(
    space=bench.space, reference_designs=bench.designs[bench.reference_idx],
    hidden_layer_sizes=(128, 128), n_estimators=1, max_epochs=4, n_train_designs=2000,
    random_state=0,
).fit(X, y, groups=groups)

# %%
# Adapt it to the held-out device
# -------------------------------
# The granted designs are left out of the scores.
truth = bench.latency[test_device].to_numpy()
features = bench.devices.loc[test_device]
rng = np.random.RandomState(0)
extra = rng.choice(np.setdiff1d(np.arange(len(truth)), bench.reference_idx), 90, replace=False)
granted = {0: np.array([], dtype=int), 10: bench.reference_idx,
           100: np.r_[bench.reference_idx, extra]}
scored = np.setdiff1d(np.arange(len(truth)), granted[100])
scored = rng.choice(scored, size=min(len(scored), 3000), replace=False)

fig, axes = plt.subplots(1, 3, figsize=(13, 4.2), sharex=True, sharey=True)
for ax, (k, shots) in zip(axes, granted.items()):
    device = model.adapt(features, *((bench.designs[shots], truth[shots]) if k else ()))
    pred, std = device.predict(bench.designs[scored], return_std=True)
    rho = spearmanr(pred, truth[scored]).statistic
    within = np.mean(np.abs(pred / truth[scored] - 1) <= 0.10)
    print(f"{k:3d} shots: Spearman {rho:.3f}  within ±10 %: {within:.1%}  "
          f"median relative std {np.median(std / pred):.2f}")
    ax.scatter(truth[scored], pred, s=4, alpha=0.5)
    lims = [truth[scored].min(), truth[scored].max()]
    ax.plot(lims, lims, "k--", lw=1)
    ax.set(xscale="log", yscale="log",
           title=f"{k} shots: ρ={rho:.2f}, within ±10 %: {within:.0%}",
           xlabel=f"{source} latency on {test_device} (ms)")
axes[0].set_ylabel("predicted latency (ms)")
fig.tight_layout()

# %%
# These small, fast networks illustrate the workflow; their numbers are not
# the benchmark. ``skedge evaluate-predictors`` fits the model with its
# defaults on every held-out piece of hardware and compares it with FLOPs,
# train-average and device-mix baselines (see :ref:`benchmarks`).
