"""The long (design, device) pair table that every predictor trains on.

Every benchmark Bunch in skedge, simulated or real, carries the same fields:

``space``
    The :class:`~skedge.spaces.DesignSpace` of the designs.
``designs``
    int array (n_designs, n_choices), option indices.
``design_ids``
    int array (n_designs,): the benchmark's own ids (``arch_idx``, ``fbnet_id``,
    ``ofa_id``; row numbers for the simulator).
``accuracy``
    float array (n_designs,) in percent, or None.
``latency``
    DataFrame (n_designs x n_settings) in milliseconds, NaN where not
    measured; columns are device-setting names.
``energy``
    DataFrame like ``latency`` in millijoules, or None.
``devices``
    DataFrame of :data:`~skedge.devices.DEVICE_FEATURES`, indexed by the
    device-setting names of ``latency``'s columns, in the same order.
``reference_idx``
    int array: row positions (into ``designs``) of the space's reference
    designs, whose latencies form a device's few-shot signature.
``DESCR``
    Text describing the data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from ..devices import DEVICE_FEATURES

__all__ = ["floor_latency", "merge_benchmarks", "to_pairs"]


def _select_devices(bunch, devices, target):
    table = bunch[target]
    if table is None:
        raise ValueError(f"this benchmark has no {target!r} table.")
    names = list(table.columns) if devices is None else list(devices)
    if devices is not None and len(names) == 0:
        raise ValueError("the device list is empty; pass None for all devices.")
    unknown = [d for d in names if d not in table.columns]
    if unknown:
        raise ValueError(
            f"unknown device {unknown[0]!r}; this benchmark has {list(table.columns)}."
        )
    return table, names


def to_pairs(
    bunch, *, devices=None, target="latency", signature=None, as_frame=False, dropna=True
):
    """Turn a benchmark Bunch into the long (design, device) pair table.

    Parameters
    ----------
    bunch : Bunch
        A benchmark from :func:`make_edge_benchmark` or a ``load_*`` function.
    devices : list of str, default=None
        Device settings to keep (all when None).
    target : {"latency", "energy"}, default="latency"
        Which table becomes ``y``.
    signature : array-like of int, default=None
        Row positions of signature designs (e.g. ``bunch.reference_idx``). Each
        row then also carries its device's measured ``target`` on those designs
        (columns ``ref0, ref1, ...``): the few-shot device description read by
        :class:`~skedge.preprocessing.DeviceSignatureEncoder`.
    as_frame : bool, default=False
        Return ``X`` as a DataFrame with named columns instead of an array.
    dropna : bool, default=True
        Drop pairs whose target was not measured.

    Returns
    -------
    X : ndarray of shape (n_pairs, n_choices + n_device_features [+ n_signature]) or DataFrame
        Design index columns, then the device-feature columns, then the
        signature columns.
    y : ndarray of shape (n_pairs,)
        The target (ms for latency, mJ for energy).
    groups : ndarray of str, shape (n_pairs,)
        Device-setting name of each row, for ``GroupKFold`` or leave-one-device-out.

    Examples
    --------
    >>> from skedge.datasets import make_edge_benchmark, to_pairs
    >>> bench = make_edge_benchmark(n_designs=20, n_devices=3, random_state=0)
    >>> X, y, groups = to_pairs(bench)
    >>> X.shape[0] == y.shape[0] == groups.shape[0] == 60
    True
    """
    table, names = _select_devices(bunch, devices, target)
    designs = np.asarray(bunch["designs"])
    dev = bunch["devices"].loc[names, list(DEVICE_FEATURES)].to_numpy(np.float64)
    sig_cols = []
    if signature is not None:
        signature = np.asarray(signature, dtype=np.int64)
        sig = table[names].to_numpy(np.float64)[signature].T  # (devices, n_signature)
        missing = ~np.isfinite(sig).all(axis=1)
        if missing.any():
            raise ValueError(
                f"device {names[int(np.argmax(missing))]!r} has no {target} measured on "
                "every signature design; choose designs measured on all devices."
            )
        dev = np.hstack([dev, sig])
        sig_cols = [f"ref{i}" for i in range(len(signature))]
    n, m = len(designs), len(names)
    y = table[names].to_numpy(np.float64).T.reshape(-1)  # device-major order
    X = np.hstack([np.tile(designs, (m, 1)).astype(np.float64), np.repeat(dev, n, axis=0)])
    groups = np.repeat(np.asarray(names, dtype=object), n)
    if dropna:
        keep = np.isfinite(y)
        X, y, groups = X[keep], y[keep], groups[keep]
    if as_frame:
        cols = list(bunch["space"].choice_names) + list(DEVICE_FEATURES) + sig_cols
        X = pd.DataFrame(X, columns=cols)
        X[cols[: designs.shape[1]]] = X[cols[: designs.shape[1]]].astype(np.int64)
    return X, y, groups


def merge_benchmarks(base, extra):
    """Add the device settings of ``extra`` to ``base`` (same space), aligning designs.

    Designs are matched by their index vectors; designs of ``extra`` that
    ``base`` lacks are appended (with NaN for ``base``'s devices). Used to join a
    user's own measurements (:func:`skedge.datasets.load_measurements`) to a
    benchmark.
    """
    if base["space"] != extra["space"]:
        raise ValueError(
            f"cannot merge benchmarks of different spaces: {base['space']!r} and "
            f"{extra['space']!r}."
        )
    clash = set(base["latency"].columns) & set(extra["latency"].columns)
    if clash:
        raise ValueError(f"both benchmarks hold device settings {sorted(clash)}.")
    space = base["space"]
    key = lambda D: [tuple(r) for r in np.asarray(D)]
    pos = {k: i for i, k in enumerate(key(base["designs"]))}
    new_rows = [i for i, k in enumerate(key(extra["designs"])) if k not in pos]
    designs = np.vstack([base["designs"], np.asarray(extra["designs"])[new_rows]])
    ids = np.concatenate([
        np.asarray(base["design_ids"]),
        np.asarray(extra["design_ids"])[new_rows],
    ])
    rows = {k: i for i, k in enumerate(key(designs))}
    order = [rows[k] for k in key(extra["designs"])]

    def _merge(a, b):
        if a is None and b is None:
            return None
        out = pd.DataFrame(np.nan, index=pd.RangeIndex(len(designs)), columns=[])
        if a is not None:
            out = pd.concat(
                [out, pd.DataFrame(a.to_numpy(), columns=a.columns).reindex(range(len(designs)))],
                axis=1,
            )
        if b is not None:
            block = pd.DataFrame(np.nan, index=range(len(designs)), columns=b.columns)
            block.iloc[order] = b.to_numpy()
            out = pd.concat([out, block], axis=1)
        out.index = pd.Index(ids, name=a.index.name if a is not None else "design_id")
        return out

    acc = base.get("accuracy")
    if acc is not None:
        acc = np.concatenate([acc, np.full(len(new_rows), np.nan)])
    return Bunch(
        space=space,
        designs=designs,
        design_ids=ids,
        accuracy=acc,
        latency=_merge(base["latency"], extra["latency"]),
        energy=_merge(base.get("energy"), extra.get("energy")),
        devices=pd.concat([base["devices"], extra["devices"]]),
        reference_idx=np.asarray(base["reference_idx"]),
        DESCR=base.get("DESCR", "") + "\n\nMerged with: " + extra.get("DESCR", "")[:200],
    )


def floor_latency(latency):
    """Floor each device's latencies at its 1st percentile.

    Degenerate NB201 cells (no operation on the path to the output) read about
    0 ms on some devices, which would dominate ratios and logs; the floor keeps
    them the fastest cells without the near-zero values.

    Parameters
    ----------
    latency : pandas.DataFrame
        Designs x devices (NaN where not measured).

    Returns
    -------
    floored : pandas.DataFrame

    Examples
    --------
    >>> import pandas as pd
    >>> from skedge.datasets import floor_latency
    >>> lat = pd.DataFrame({"a": [0.001] + [1.0] * 99 + [2.0]})
    >>> float(floor_latency(lat)["a"].min())
    1.0
    """
    return latency.clip(lower=latency.quantile(0.01), axis=1)
