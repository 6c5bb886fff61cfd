"""
Amortized optimizer vs per-device search: Pareto fronts of two devices
======================================================================

The amortized optimizer is trained once over a population of devices and
objective weights; afterwards it answers a (device, λ) row with one forward
pass. The search baseline solves each row on its own. Here both sweep
λ_lat for two very different unseen devices, a desktop GPU and a little
phone CPU, and their designs are placed on each device's exact predicted
Pareto front (all 15,625 NAS-Bench-201 designs scored).
"""

# %%
# Predictors on simulated devices
# -------------------------------
import time

import matplotlib.pyplot as plt
import numpy as np

from skedge import AmortizedDesignOptimizer, SearchBaseline
from skedge.datasets import make_edge_benchmark, to_pairs
from skedge.optimize import Objective, pareto_front, plot_pareto_front, sample_optimizer_inputs
from skedge.pipelines import make_accuracy_pipeline, make_performance_pipeline

bench = make_edge_benchmark("nb201", n_designs=500, n_devices=30, random_state=0)
family = bench.family
test_devices = [family.index[family == "desktop_gpu"][0],
                family.index[family == "phone_little_cpu"][0]]
train_devices = [d for d in bench.latency.columns if d not in test_devices]

small = dict(hidden_layer_sizes=(64, 64), batch_size=512, learning_rate=3e-3,
             n_estimators=1, random_state=0)
X, y, _ = to_pairs(bench, devices=train_devices)
latency = make_performance_pipeline(bench.space, max_epochs=20, **small).fit(X, y)
accuracy = make_accuracy_pipeline(bench.space, max_epochs=150, **small).fit(
    bench.designs, bench.accuracy)

# %%
# Train the optimizer once, on the training devices
# -------------------------------------------------
# Rows are ``[device features..., λ_lat]``; the optimizer adds devices sampled
# around the known ones (jittered specs, mixtures of same-kind devices) and
# redraws λ log-uniformly in ``lambda_range`` at every step.
train_rows = sample_optimizer_inputs(bench.devices.loc[train_devices], 256, random_state=0)
optimizer = AmortizedDesignOptimizer(
    space=bench.space, accuracy=accuracy, latency=latency, hidden_layer_sizes=(128, 128),
    n_steps=1500, n_augment=2048, lambda_range=(1e-3, 1.0), random_state=0,
).fit(train_rows)
print(f"optimizer trained in {optimizer.fit_time_:.1f} s")

search = SearchBaseline(space=bench.space, accuracy=accuracy, latency=latency,
                        method="exhaustive").fit(train_rows[:2])
objective = Objective(bench.space, accuracy, latency)

# %%
# Sweep λ on the two unseen devices
# ---------------------------------
lambdas = np.r_[0.0, np.logspace(-3, 0, 12)]
fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
for ax, name in zip(axes, test_devices):
    device = bench.devices.loc[name].to_numpy()
    exact = pareto_front(objective, device, designs="all")
    start = time.perf_counter()
    front_opt = pareto_front(optimizer, device, lambdas=lambdas)
    t_opt = time.perf_counter() - start
    start = time.perf_counter()
    front_search = pareto_front(search, device, lambdas=lambdas)
    t_search = time.perf_counter() - start
    print(f"{name}: {len(lambdas)} λ values, optimizer {t_opt:.2f} s, "
          f"exhaustive search {t_search:.2f} s; front sizes exact {len(exact)}, "
          f"optimizer {len(front_opt)}, search {len(front_search)}")
    plot_pareto_front(exact, ax=ax, label="exact front (all designs)", color="0.7", s=12)
    plot_pareto_front(front_search, ax=ax, label="search, λ sweep", step=False, marker="s",
                      s=50, facecolors="none", edgecolors="tab:blue")
    plot_pareto_front(front_opt, ax=ax, label="amortized optimizer, λ sweep", step=False,
                      color="tab:red", marker="x", s=40)
    ax.set_xscale("log")
    ax.set_title(f"{name} (unseen)")
    ax.set_xlabel("predicted latency (ms)")
fig.tight_layout()

# %%
# The optimizer's designs sit on or near each device's front, and differ
# between the devices: the fastest designs of a GPU are not those of a little
# CPU. Only designs that minimize some weighted sum can be reached by a λ sweep,
# so both sweeps trace the convex part of the front.
