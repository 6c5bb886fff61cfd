"""The sub-commands of ``skedge`` (the entry point is :func:`skedge.cli.main`).

One module per command group, each with ``register(subparsers)``: ``run``,
``apply``, ``demo``, ``measure`` (``measure``, ``export``, ``import-timings``)
and ``evaluate`` (``evaluate-predictors``, ``evaluate-optimizer``). They parse
and check options, call the library (:mod:`skedge.workflow`,
:mod:`skedge.evaluation`, :mod:`skedge.measure`) and print; ``_report`` holds
the console tables and ``_plots`` the matplotlib figures.
"""
