"""The end-to-end workflow: predictors, amortized optimizer, comparison with search.

:func:`run_workflow` is ``skedge run`` as a library call (no printing, no
saving): it prepares the data, fits the accuracy/latency/energy predictors and
the :class:`~skedge.optimize.AmortizedDesignOptimizer`, and compares the
optimizer with a per-device search on unseen devices, returning a
:class:`WorkflowResult`. :func:`design_for_devices` is the library half of
``skedge apply``: saved models (:func:`skedge.persistence.load_models`)
applied to new device rows, adapted to measured shots where a device has them.

Modules (one concept each): ``_sizes`` (:data:`SIZES`), ``_checks`` (the
inputs, checked before any long work), ``_summary`` (short design names),
``_data`` (benchmark, unseen devices, truth), ``_fit`` (predictors and
optimizer), ``_compare`` (optimizer vs search), ``_shots`` (few-shot
adaptation), ``_run`` (:func:`run_workflow`), ``_apply``
(:func:`design_for_devices`).
"""

from ._apply import check_device_columns, design_for_devices, sweep_lambdas
from ._checks import check_counts, check_lambda_energy, parse_lambdas, parse_test
from ._run import STAGE_DONE, WorkflowResult, run_workflow
from ._shots import adapt_devices, read_shots
from ._sizes import DEFAULT_LAMBDA_ENERGY, SIZES
from ._summary import design_summary, kind_name, space_key

__all__ = [
    "DEFAULT_LAMBDA_ENERGY",
    "SIZES",
    "STAGE_DONE",
    "WorkflowResult",
    "adapt_devices",
    "check_counts",
    "check_device_columns",
    "check_lambda_energy",
    "design_for_devices",
    "design_summary",
    "kind_name",
    "parse_lambdas",
    "parse_test",
    "read_shots",
    "run_workflow",
    "space_key",
    "sweep_lambdas",
]
