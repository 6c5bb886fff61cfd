"""
Searching designs for many devices on a dask cluster
====================================================

:class:`~skedge.SearchBaseline` solves every (device, λ) row independently,
through joblib. Inside ``joblib.parallel_config(backend="dask")`` those rows
become tasks of a dask cluster, with no other change to the code. Here a
:class:`~dask.distributed.LocalCluster` stands in for a real one; on a real
cluster, pass its scheduler address to :class:`~dask.distributed.Client`.
The space is FBNet (9^22 designs), where the search runs regularized
evolution.
"""

# %%
# Predictors and 32 new devices
# -----------------------------
import time

import joblib
import matplotlib.pyplot as plt
import numpy as np
from dask.distributed import Client, LocalCluster

from skedge import SearchBaseline
from skedge.datasets import make_device_population, make_edge_benchmark, to_pairs
from skedge.pipelines import make_accuracy_pipeline, make_performance_pipeline

bench = make_edge_benchmark("fbnet", n_designs=300, n_devices=16, random_state=0)
small = dict(hidden_layer_sizes=(64,), batch_size=512, learning_rate=3e-3,
             n_estimators=1, random_state=0)
X, y, _ = to_pairs(bench)
latency = make_performance_pipeline(bench.space, max_epochs=10, **small).fit(X, y)
accuracy = make_accuracy_pipeline(bench.space, max_epochs=60, **small).fit(
    bench.designs, bench.accuracy)

population = make_device_population(32, random_state=1)  # devices never measured
rows = np.column_stack([population.devices.to_numpy(), np.full(32, 0.1)])  # λ_lat = 0.1

search = SearchBaseline(space=bench.space, accuracy=accuracy, latency=latency,
                        method="evolution", population_size=30, n_cycles=60, sample_size=10,
                        n_offspring=15, n_jobs=-1, random_state=0).fit(rows)

# %%
# Serially, then on the cluster
# -----------------------------
start = time.perf_counter()
with joblib.parallel_config(backend="sequential"):
    serial = search.predict(rows)
t_serial = time.perf_counter() - start

# Threads keep this example light; processes=True (the default) gives each
# worker its own interpreter, as on a real cluster.
with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                  dashboard_address=None) as cluster, Client(cluster) as client:
    start = time.perf_counter()
    with joblib.parallel_config(backend="dask"):
        distributed = search.predict(rows)
    t_dask = time.perf_counter() - start

print(f"{len(rows)} rows: sequential {t_serial:.1f} s, dask (2 workers) {t_dask:.1f} s")
print("same designs either way:", bool((serial == distributed).all()))

# %%
# Do not read a speed-up into these two numbers: with ``processes=False`` the
# workers are threads of this interpreter and share its lock, and the machine
# that builds these pages has two cores. The point is the pattern: the same
# ``predict`` call spreads its rows over as many workers as the cluster has.

# %%
# What the search chose
# ---------------------
# Each row has its own seed, so the result does not depend on the backend.
# The chosen designs differ by device family: the objective weighs latency
# relative to each device's own typical latency.
metrics = search.objective_.metrics(distributed, population.devices.to_numpy())
fig, ax = plt.subplots(figsize=(6, 4))
for fam in sorted(set(population.family)):
    m = (population.family == fam).to_numpy()
    ax.scatter(metrics["latency"][m], metrics["accuracy"][m], label=fam, s=25)
ax.set(xscale="log", xlabel="predicted latency of the chosen design (ms)",
       ylabel="predicted accuracy (%)", title="One design per device (λ_lat = 0.1)")
ax.xaxis.set_minor_formatter(plt.NullFormatter())  # keep the log axis readable
ax.legend(fontsize=7, ncol=2)
fig.tight_layout()
