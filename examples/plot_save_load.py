"""
Saving a fitted pipeline and loading it in production
=====================================================

Train once, ship the model. Two formats (see :ref:`persistence`):

* ``joblib.dump`` / ``joblib.load``: a pickle of anything. A pickle is code:
  load only files you made or trust.
* :func:`skedge.save_model` / :func:`skedge.load_model`: a folder with
  ``model.json`` (classes, parameters, structure) and ``arrays.safetensors``
  (weights and arrays). Nothing is unpickled or executed on load.

Both reload a model that predicts exactly as the original.
"""

# %%
# Train (the "research" side)
# ---------------------------
import json
import tempfile
from pathlib import Path

import joblib
import matplotlib.pyplot as plt
import numpy as np

from skedge import load_model, save_model
from skedge.datasets import make_edge_benchmark, to_pairs
from skedge.pipelines import make_performance_pipeline

bench = make_edge_benchmark("nb201", n_designs=200, n_devices=10, random_state=0)
X, y, _ = to_pairs(bench, signature=bench.reference_idx)
pipeline = make_performance_pipeline(bench.space, n_signature=10, n_estimators=3,
                                     hidden_layer_sizes=(64, 64), max_epochs=10,
                                     batch_size=512, random_state=0).fit(X, y)

out = Path(tempfile.mkdtemp())
joblib.dump(pipeline, out / "latency.joblib")
folder = save_model(pipeline, out / "latency_model")
for path in sorted(out.rglob("*")):
    if path.is_file():
        print(f"{path.relative_to(out)!s:40s} {path.stat().st_size / 1024:8.1f} KiB")

# %%
# What the safe format stores
# ---------------------------
# ``model.json`` is plain JSON: the classes, every parameter, the versions
# that wrote it and a checksum of the arrays file.
doc = json.loads((folder / "model.json").read_text())
print("class:", doc["class"])
print("versions:", doc["versions"])
regressor = doc["root"]["state"]["steps"][1]["__tuple__"][1]
print("regressor:", regressor["__estimator__"])
print("its n_estimators:", regressor["state"]["n_estimators"])

# %%
# Load (the "production" side)
# ----------------------------
# In production, only the loading code runs. The loaded pipelines predict
# identically, including the ensemble spread, and remain ordinary estimators.
from_joblib = joblib.load(out / "latency.joblib")
from_safe = load_model(folder)

mean, std = pipeline.predict(X, return_std=True)
for name, model in [("joblib", from_joblib), ("save_model", from_safe)]:
    m, s = model.predict(X, return_std=True)
    np.testing.assert_array_equal(m, mean)
    np.testing.assert_array_equal(s, std)
    print(f"{name:10s}: identical predictions for {len(X)} rows")
print(from_safe.get_params()["regressor__n_estimators"])

fig, ax = plt.subplots(figsize=(4.5, 4))
ax.errorbar(mean[:300], from_safe.predict(X[:300]), xerr=std[:300], fmt="o", ms=3,
            alpha=0.5, elinewidth=0.5)
ax.plot([mean.min(), mean.max()], [mean.min(), mean.max()], "k--", lw=1)
ax.set(xscale="log", yscale="log", xlabel="original pipeline (ms, ± ensemble spread)",
       ylabel="loaded with load_model (ms)", title="Same predictions after reloading")
fig.tight_layout()
