"""Device features: the schema and its validation.

Reading device files lives in :mod:`skedge.datasets` (:func:`~skedge.datasets.load_devices`,
:func:`~skedge.datasets.read_device_file`); comparing devices in the encoded feature space
in :mod:`skedge.preprocessing` (:func:`~skedge.preprocessing.nearest_devices`); describing
this machine in :mod:`skedge.measure` (:func:`~skedge.measure.describe_local_device`).

A device *setting* (one piece of hardware at one batch size and precision) is
described by one numeric row. ``kind`` is stored as its index in
:data:`DEVICE_KINDS` so the whole row is numeric; unknown values are NaN and are
never filled in by guesswork here (the predictors impute them, see
:class:`skedge.preprocessing.DeviceFeatureEncoder`).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ._checks import numeric_column

__all__ = [
    "DEVICE_FEATURES",
    "DEVICE_KINDS",
    "FEATURE_BOUNDS",
    "hardware_groups",
    "hardware_name",
    "validate_device_table",
]

#: Device families; the ``kind`` feature is the index into this tuple.
DEVICE_KINDS = (
    "phone_cpu",
    "phone_gpu",
    "phone_dsp",
    "npu",
    "edge_gpu",
    "board_cpu",
    "desktop_cpu",
    "server_cpu",
    "desktop_gpu",
    "datacenter_gpu",
    "fpga",
    "asic",
)

#: Numeric device feature columns, in the order every skedge table uses.
DEVICE_FEATURES = (
    "kind",
    "batch_size",
    "precision_bits",
    "peak_gflops",
    "mem_bandwidth_gbs",
    "compute_units",
    "clock_ghz",
    "on_chip_mb",
    "mem_gb",
    "tdp_w",
    "process_nm",
    "release_year",
)

#: Physically possible values of each numeric feature, ``(low, high, low_inclusive)``:
#: a value outside is a typo or a unit mix-up (``peak_gflops = -300``,
#: ``clock_ghz = 2800``), never a device. Far wider than any real device: what
#: merely lies far from the training devices is warned about when predicting
#: (:class:`~skedge.preprocessing.DeviceFeatureEncoder`), not refused.
FEATURE_BOUNDS = {
    "batch_size": (1, 1e6, True),
    "precision_bits": (1, 64, True),
    "peak_gflops": (0, 1e8, False),
    "mem_bandwidth_gbs": (0, 1e6, False),
    "compute_units": (1, 1e7, True),
    "clock_ghz": (0, 10, False),
    "on_chip_mb": (0, 1e5, True),
    "mem_gb": (0, 1e5, False),
    "tdp_w": (0, 1e5, False),
    "process_nm": (0, 1000, False),
    "release_year": (1970, 2100, True),
}
_WHOLE = ("batch_size", "precision_bits", "compute_units", "release_year")

_BATCH_SUFFIX = re.compile(r"_(\d+)$")
_THREADS_SUFFIX = re.compile(r"_t\d+$")


def hardware_name(setting):
    """Name of the hardware behind a device setting: ``'1080ti_32'`` -> ``'1080ti'``.

    Settings that differ only in their batch-size suffix (``_1``, ``_32``, ...)
    or thread-count suffix (``_t1``, ``_t2``, as ``skedge measure`` names
    them) share hardware and must be held out together when a device is
    evaluated as unseen.

    Examples
    --------
    >>> from skedge.devices import hardware_name
    >>> hardware_name("titanxp_256"), hardware_name("pixel3"), hardware_name("true_a76")
    ('titanxp', 'pixel3', 'true_a76')
    >>> hardware_name("local_t2")
    'local'
    """
    m = _THREADS_SUFFIX.search(setting)
    if m:
        return setting[: m.start()]
    m = _BATCH_SUFFIX.search(setting)
    if m and int(m.group(1)) in (1, 32, 64, 128, 256):
        return setting[: m.start()]
    return setting


def hardware_groups(table):
    """Group device settings that run on the same hardware.

    Two settings share hardware when their names differ only in a batch-size
    suffix (``1080ti_1``, ``1080ti_32``) or when their feature rows are identical
    apart from ``batch_size`` (``pixel3`` and ``rice_pixel3``; ``eagle_gtx`` and
    ``1080ti_1``). An unseen-device evaluation must hold out a whole group.

    Parameters
    ----------
    table : pandas.DataFrame
        Device features indexed by setting name (e.g. :func:`skedge.datasets.load_devices`).

    Returns
    -------
    groups : dict
        ``{setting name: group label}``; the label is the group's first name in
        sorted order.

    Examples
    --------
    >>> import pandas as pd
    >>> from skedge.devices import DEVICE_FEATURES, hardware_groups
    >>> t = pd.DataFrame([[1.0] * 12, [1.0] * 12, [2.0] * 12], columns=DEVICE_FEATURES,
    ...                  index=["gpu_1", "gpu_32", "phone"])
    >>> hardware_groups(t)
    {'gpu_1': 'gpu_1', 'gpu_32': 'gpu_1', 'phone': 'phone'}
    """
    names = sorted(map(str, table.index))
    parent = {n: n for n in names}

    def find(n):
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    def union(a, b):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    by_key = {}
    spec_cols = [c for c in DEVICE_FEATURES if c != "batch_size" and c in table.columns]
    for name in names:
        row = table.loc[name, spec_cols].to_numpy(dtype=np.float64)
        spec_key = tuple("nan" if np.isnan(v) else round(float(v), 9) for v in row)
        for key in (("name", hardware_name(name)), ("spec", spec_key)):
            if key in by_key:
                union(name, by_key[key])
            else:
                by_key[key] = name
    return {n: find(n) for n in names}


def validate_device_table(df, *, source="device table"):
    """Check a device feature table and return it numeric, indexed by ``device``.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per device setting with a ``device`` column (or index) and the
        :data:`DEVICE_FEATURES` columns; ``kind`` may be a name from
        :data:`DEVICE_KINDS` or its index.
    source : str
        Where the table came from, for error messages.

    Returns
    -------
    table : pandas.DataFrame
        Float columns :data:`DEVICE_FEATURES`, index ``device``.
    """
    df = df.copy()
    if "device" in df.columns:
        df = df.set_index("device")
    df.index = df.index.astype(str)
    df.index.name = "device"
    missing = [c for c in DEVICE_FEATURES if c not in df.columns]
    if missing:
        raise ValueError(f"{source} lacks the device feature columns {missing}.")
    kind = df["kind"]
    if kind.dtype == object or pd.api.types.is_string_dtype(kind):
        # Names and codes may be mixed (e.g. JSON rows written by different tools).
        codes = pd.to_numeric(kind, errors="coerce")
        names = kind[codes.isna() & kind.notna()].astype(str)
        unknown = sorted(set(names) - set(DEVICE_KINDS))
        if unknown:
            raise ValueError(
                f"{source}: unknown device kind {unknown[0]!r}; known kinds are {DEVICE_KINDS}."
            )
        df["kind"] = codes.fillna(names.map({k: i for i, k in enumerate(DEVICE_KINDS)}))
    out = pd.DataFrame({c: numeric_column(df[c], c, source) for c in DEVICE_FEATURES},
                       index=df.index)
    out = _merge_repeats(out, source)
    _check_bounds(out, source)
    bad_kind = out["kind"].dropna()
    bad_kind = bad_kind[(bad_kind < 0) | (bad_kind >= len(DEVICE_KINDS)) | (bad_kind % 1 != 0)]
    if len(bad_kind):
        raise ValueError(f"{source}: device {bad_kind.index[0]!r} has an invalid kind code.")
    return out


def _merge_repeats(table, source):
    """One row per device: a device listed again with the same features is the same device
    (a measurement file repeats its device row on every design); different features are
    refused, naming the first field that differs."""
    repeated = table.index.duplicated()
    if not repeated.any():
        return table
    for name in table.index[repeated].unique():
        rows = table.loc[[name]]
        same = rows.eq(rows.iloc[0]) | (rows.isna() & rows.iloc[0].isna())
        if not same.all(axis=None):
            field = same.columns[~same.all(axis=0)][0]
            values = ", ".join(f"{v:g}" for v in rows[field].drop_duplicates())
            raise ValueError(f"{source} lists device {name!r} twice with different {field} "
                             f"({values}).")
    return table[~repeated]


def _check_bounds(table, source):
    """Refuse physically impossible feature values (negative, zero, absurdly large)."""
    for field, (low, high, closed) in FEATURE_BOUNDS.items():
        col = table[field]
        ok = col.isna() | (((col >= low) if closed else (col > low)) & (col <= high))
        if field in _WHOLE:
            ok &= col.isna() | (col % 1 == 0)
        if not ok.all():
            device = col.index[~ok.to_numpy()][0]
            what = "a whole number " if field in _WHOLE else ""
            raise ValueError(
                f"{source}: device {device!r} has {field} = {col[device]:g}; expected "
                f"{what}{'>=' if closed else '>'} {low:g} and <= {high:g}. Check the value "
                "and its unit, or leave it empty / null when unknown."
            )
