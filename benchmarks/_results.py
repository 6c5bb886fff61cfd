"""What the timing benchmarks share: their command line, and the JSON they write
(their records and the machine they were measured on)."""

from __future__ import annotations

import argparse
import json
import os
import platform

import torch


def parse_timing_args(description, argv=None, *, spaces, rows, repeats):
    """``--spaces`` (comma-separated), ``--rows``, ``--repeats`` and ``--json``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--spaces", default=spaces)
    p.add_argument("--rows", type=int, default=rows)
    p.add_argument("--repeats", type=int, default=repeats)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    args.spaces = args.spaces.split(",")
    return args


def write_results(path, records, **info):
    """Write ``{"info": machine and ``info``, "records": records}`` to ``path`` and say so."""
    info = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "torch": torch.__version__, "loadavg": os.getloadavg(), **info}
    with open(path, "w") as fh:
        json.dump({"info": info, "records": records}, fh, indent=2)
    print(f"wrote {path}")
