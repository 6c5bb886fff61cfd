"""Device feature files: ``devices/devices.csv`` of the data home, and a user's device files.

The schema and its validation are :mod:`skedge.devices`; this module only reads.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd

from ..devices import DEVICE_FEATURES, validate_device_table
from ._home import data_file

__all__ = ["load_devices", "read_device_file"]


def load_devices(data_home=None):
    """Load ``devices/devices.csv`` from the data home.

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

    Parameters
    ----------
    path : str or path-like
        A ``.json`` file, or a CSV file with a header row.

    Returns
    -------
    table : pandas.DataFrame
        As :func:`validate_device_table` returns it.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        ``path`` is a directory, empty, not valid JSON/CSV, holds no device
        object, or a row fails :func:`validate_device_table`; the message
        names the file.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"device file {path} is a directory; give a CSV or JSON file.")
    if not path.is_file():
        raise FileNotFoundError(f"device file {path} does not exist.")
    text = path.read_text(encoding="utf-8", errors="replace")
    if not text.strip():
        raise ValueError(f"device file {path} is empty; it needs one device row or object.")
    if path.suffix.lower() == ".json":
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"device file {path} is not valid JSON: {exc}.") from None
        rows = [obj] if isinstance(obj, dict) else obj
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ValueError(
                f"device file {path} must hold a JSON object (one device) or a list of "
                f"objects, with the keys {', '.join(DEVICE_FEATURES)}; it holds "
                f"{type(obj).__name__} {str(obj)[:60]!r}."
            )
        df = pd.DataFrame(rows)
    else:
        try:
            df = pd.read_csv(io.StringIO(text))
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise ValueError(f"device file {path} is not a readable CSV: {exc}") from None
    if len(df) == 0:
        raise ValueError(f"device file {path} holds no device.")
    if "device" not in df.columns:
        df["device"] = [path.stem if len(df) == 1 else f"{path.stem}_{i}" for i in range(len(df))]
    return validate_device_table(df, source=str(path))
