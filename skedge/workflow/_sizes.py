"""The sizes of the end-to-end workflow: models, search and benchmark, "default" or "fast"."""

from __future__ import annotations

__all__ = ["DEFAULT_LAMBDA_ENERGY", "SIZES"]

#: Model and search sizes of :func:`~skedge.workflow.run_workflow` (``skedge run``):
#: "default" is the job the README shows; "fast" is a smoke test of a few seconds.
SIZES = {
    "default": {
        "n_designs": 2000,
        "n_devices": 40,
        "n_test": 4,
        "lambdas": (0.01, 0.05, 0.2),
        "accuracy": {"hidden_layer_sizes": (128, 128), "max_epochs": 100, "batch_size": 256,
                     "learning_rate": 2e-3, "n_estimators": 1},
        "performance": {"hidden_layer_sizes": (256, 256), "max_epochs": 8, "batch_size": 512,
                        "learning_rate": 2e-3},
        "optimizer": {"hidden_layer_sizes": (256, 256), "n_steps": 1000, "batch_size": 256,
                      "n_augment": 4096},
        "n_optimizer_rows": 1024,
        "search": {"population_size": 100, "n_cycles": 500, "sample_size": 25,
                   "n_offspring": 25},
    },
    "fast": {
        "n_designs": 240,
        "n_devices": 12,
        "n_test": 2,
        "lambdas": (0.02, 0.2),
        "accuracy": {"hidden_layer_sizes": (32,), "max_epochs": 5, "batch_size": 128,
                     "n_estimators": 1},
        "performance": {"hidden_layer_sizes": (32,), "max_epochs": 3, "batch_size": 256},
        "optimizer": {"hidden_layer_sizes": (32,), "n_steps": 20, "batch_size": 64,
                      "n_augment": 128, "n_estimators": 2, "distill": 256,
                      "distill_refine": 1},
        "n_optimizer_rows": 64,
        "search": {"population_size": 20, "n_cycles": 40, "sample_size": 5, "n_offspring": 10},
    },
}

#: The energy weight λ_en of a run with energy (``skedge run --lambda-energy``).
DEFAULT_LAMBDA_ENERGY = 0.02
