"""
Tuning a predictor with GridSearchCV, device by device
======================================================

skedge's pipelines are ordinary scikit-learn pipelines, so the usual tools
apply. Here :class:`~sklearn.model_selection.GridSearchCV` picks the hidden
layer sizes of the latency regressor inside
:func:`~skedge.make_performance_pipeline`. The folds are *devices*
(:class:`~sklearn.model_selection.GroupKFold` on the device of each pair row),
so every score is measured on devices the candidate never saw, which is what
the predictor is for. The score is the mean absolute percentage error.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.model_selection import GridSearchCV, GroupKFold

from skedge.datasets import make_edge_benchmark, to_pairs
from skedge.pipelines import make_performance_pipeline

bench = make_edge_benchmark("nb201", n_designs=150, n_devices=30, random_state=0)
X, y, groups = to_pairs(bench)
print(f"{len(X)} pair rows from {len(set(groups))} devices")

pipe = make_performance_pipeline(bench.space, max_epochs=10, batch_size=512,
                                 learning_rate=3e-3, random_state=0)
grid = {"regressor__hidden_layer_sizes": [(16,), (64,), (64, 64)]}
search = GridSearchCV(pipe, grid, cv=GroupKFold(n_splits=3),
                      scoring="neg_mean_absolute_percentage_error", n_jobs=1)
search.fit(X, y, groups=groups)

# %%
# Results: the error on held-out devices per candidate (lower is better).
results = pd.DataFrame(search.cv_results_)
results["hidden"] = results["param_regressor__hidden_layer_sizes"].astype(str)
results["MAPE %"] = -100 * results["mean_test_score"]
results["std %"] = 100 * results["std_test_score"]
print(results[["hidden", "MAPE %", "std %", "mean_fit_time"]].to_string(index=False))
print("best:", search.best_params_)

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.bar(results["hidden"], results["MAPE %"], yerr=results["std %"], capsize=4,
       color=["tab:blue" if r == search.best_index_ else "0.7" for r in range(len(results))])
ax.set(xlabel="hidden_layer_sizes", ylabel="latency error on unseen devices (MAPE, %)",
       title="GridSearchCV with device-grouped folds")
fig.tight_layout()

# %%
# ``search.best_estimator_`` is the whole pipeline refitted on all devices with
# the best setting; it predicts like any regressor.
print(np.round(search.best_estimator_.predict(X[:3]), 3), np.round(y[:3], 3))
