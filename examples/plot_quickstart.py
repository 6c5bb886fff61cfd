"""
Quickstart on the embedded simulator
====================================

Simulate a cross-device benchmark, train the accuracy and latency predictors,
check the latency predictor on devices it never saw, and pick designs for one
of them with the search baseline. Nothing is downloaded.
"""

# %%
# A benchmark: NAS-Bench-201 designs on simulated edge devices
# -------------------------------------------------------------
# :func:`~skedge.datasets.make_edge_benchmark` simulates the latency (ms) of
# every design on every device with a per-layer roofline model, and an
# accuracy (%) per design. Designs are integer arrays of option indices.
import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import spearmanr

from skedge.datasets import make_edge_benchmark, to_pairs
from skedge.pipelines import make_accuracy_pipeline, make_performance_pipeline

bench = make_edge_benchmark("nb201", n_designs=500, n_devices=20, random_state=0)
print(bench.DESCR.splitlines()[1])
print("designs", bench.designs.shape, "latency table", bench.latency.shape)

# %%
# Hold out four devices
# ---------------------
# :func:`~skedge.datasets.to_pairs` lays the benchmark out as one row per
# (design, device) pair: design columns, then the device's spec-sheet features.
# ``groups`` names the device of each row, so whole devices can be held out.
test_devices = list(bench.latency.columns[::5])
train_devices = [d for d in bench.latency.columns if d not in test_devices]
X_train, y_train, _ = to_pairs(bench, devices=train_devices)
X_test, y_test, g_test = to_pairs(bench, devices=test_devices)

# Small single networks and few epochs keep this example fast; the defaults are
# larger (the accuracy predictor: three networks, 200 epochs).
small = dict(hidden_layer_sizes=(64, 64), batch_size=512, learning_rate=3e-3,
             n_estimators=1, random_state=0)
latency = make_performance_pipeline(bench.space, max_epochs=20, **small).fit(X_train, y_train)
accuracy = make_accuracy_pipeline(bench.space, max_epochs=150, **small).fit(
    bench.designs, bench.accuracy)

# %%
# Zero-shot latency on the unseen devices
# ---------------------------------------
# The predictor sees the new devices only through their spec sheets.
pred = latency.predict(X_test)
fig, ax = plt.subplots(figsize=(5, 4.5))
for name in test_devices:
    rows = g_test == name
    rho = spearmanr(pred[rows], y_test[rows]).statistic
    ax.scatter(y_test[rows], pred[rows], s=6, label=f"{name} (ρ={rho:.2f})")
lims = [min(y_test.min(), pred.min()), max(y_test.max(), pred.max())]
ax.plot(lims, lims, "k--", lw=1)
ax.set(xscale="log", yscale="log", xlabel="simulated latency (ms)",
       ylabel="predicted latency (ms)", title="Devices never seen in training")
ax.legend(fontsize=7)
fig.tight_layout()

# %%
# Designs for one unseen device
# -----------------------------
# An optimizer row is ``[device features..., λ_lat]``. λ_lat = 0 asks for the
# most accurate design; larger λ_lat trades accuracy for latency relative to
# the device's own typical latency. NB201 is small (15,625 designs), so the
# search baseline solves each row exactly.
from skedge import SearchBaseline

device = bench.devices.loc[test_devices[0]].to_numpy()
lambdas = [0.0, 0.01, 0.05, 0.2, 1.0]
rows = np.column_stack([np.tile(device, (len(lambdas), 1)), lambdas])
search = SearchBaseline(space=bench.space, accuracy=accuracy, latency=latency,
                        method="exhaustive").fit(rows)
designs = search.predict(rows)
metrics = search.objective_.metrics(designs, device)
for lam, s, a, t in zip(lambdas, bench.space.to_strings(designs), metrics["accuracy"],
                        metrics["latency"]):
    print(f"λ_lat={lam:<5} {s}  predicted {a:5.2f} %  {t:7.2f} ms")

# %%
# The accuracies printed are *predicted*. The search picks the designs the
# predictor likes best, so it also finds the predictor's optimistic errors:
# predicted accuracies above the best simulated one (about 94.6 % here) are
# such errors. Larger training sets (and ensembles, see
# :ref:`sphx_glr_auto_examples_plot_ensemble_uncertainty.py`) reduce them.
