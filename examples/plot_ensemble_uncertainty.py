"""
Knowing when the predictor is unsure: ensembles
===============================================

With ``n_estimators > 1`` the regressors train an ensemble of MLPs from
different seeds, and ``predict(X, return_std=True)`` returns the spread of the
members' predictions next to their (geometric) mean. The spread is small where
the training data pins the answer down and grows where it does not, for
instance on a device family that was absent from training. Here the latency
predictor never sees the bit-serial FPGA accelerators.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np

from skedge.datasets import make_edge_benchmark, to_pairs
from skedge.pipelines import make_performance_pipeline

bench = make_edge_benchmark("nb201", n_designs=150, n_devices=30, random_state=0)
novel = list(bench.family.index[bench.family == "fpga_bitserial"])
familiar = [d for d in bench.latency.columns if d not in novel][::7]  # held out, known kinds
train = [d for d in bench.latency.columns if d not in novel + familiar]

X, y, _ = to_pairs(bench, devices=train)
ensemble = make_performance_pipeline(
    bench.space, n_estimators=5, hidden_layer_sizes=(64, 64), max_epochs=12,
    batch_size=512, learning_rate=3e-3, random_state=0,
).fit(X, y)

# %%
# The pipeline passes ``return_std`` on to the regressor. The spread is in
# milliseconds; divided by the prediction it is a relative uncertainty,
# comparable across devices.
groups = {"training devices": train, "unseen, known kinds": familiar,
          "unseen family (FPGA)": novel}
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
for label, devices in groups.items():
    Xg, yg, _ = to_pairs(bench, devices=devices)
    mean, std = ensemble.predict(Xg, return_std=True)
    spread = std / mean
    error = np.abs(np.log(mean / yg))
    print(f"{label:22s} median relative spread {np.median(spread):6.1%}  "
          f"median |log error| {np.median(error):.3f}")
    axes[0].hist(spread, bins=np.linspace(0, 0.35, 36), alpha=0.6, density=True, label=label)
    axes[1].scatter(spread, error, s=3, alpha=0.4, label=label)
axes[0].set(xlabel="ensemble spread / prediction", ylabel="density",
            title="Spread of 5 members")
axes[1].set(xlabel="ensemble spread / prediction", ylabel="|log(predicted / true)|",
            title="Spread vs actual error")
axes[0].legend()
fig.tight_layout()

# %%
# Rows whose spread is large deserve a measurement (or the few-shot path of
# :ref:`unseen-devices`) before their predictions are trusted. The spread is a
# warning sign, not an error bar: the bands of points at large error but
# moderate spread are unseen devices that every member gets wrong by the same
# factor. Such a scale bias shows only in measurements, which is what the
# few-shot adapter corrects.
