"""Device feature files: ``devices/devices.csv`` of the data home, and a user's device files.

The schema and its validation are :mod:`skedge.devices`; this module only reads.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..devices import validate_device_table
from ._home import data_file

__all__ = ["load_devices", "read_device_file"]


def load_devices(data_home=None):
    """Load ``devices/devices.csv`` from the data home.

    (Also importable from :mod:`skedge.devices`, its former home.)

    Parameters
    ----------
    data_home : str or path-like, default=None
        See :func:`skedge.datasets.get_data_home`.

    Returns
    -------
    table : pandas.DataFrame
        Numeric :data:`DEVICE_FEATURES` (``kind`` as an index into
        :data:`DEVICE_KINDS`), one row per device setting, NaN where unknown.
    """
    path = data_file("devices/devices.csv", data_home)
    return validate_device_table(pd.read_csv(path), source=str(path))


def read_device_file(path):
    """Read device feature rows from a CSV or JSON file.

    JSON may hold one object (one device) or a list of objects; a missing
    ``device`` name becomes the file stem. Columns beyond the schema are ignored.
    """
    path = Path(path)
    if path.suffix.lower() == ".json":
        obj = json.loads(path.read_text())
        df = pd.DataFrame([obj] if isinstance(obj, dict) else obj)
    else:
        df = pd.read_csv(path)
    if "device" not in df.columns:
        df["device"] = [path.stem if len(df) == 1 else f"{path.stem}_{i}" for i in range(len(df))]
    return validate_device_table(df, source=str(path))
