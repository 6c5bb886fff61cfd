"""The JSON a benchmark writes: its records and the machine they were measured on."""

from __future__ import annotations

import json
import os
import platform

import torch


def write_results(path, records, **info):
    """Write ``{"info": machine and ``info``, "records": records}`` to ``path`` and say so."""
    info = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "torch": torch.__version__, "loadavg": os.getloadavg(), **info}
    with open(path, "w") as fh:
        json.dump({"info": info, "records": records}, fh, indent=2)
    print(f"wrote {path}")
