"""Loaders for the real measured benchmarks: NAS-Bench-201, FBNet and OFA latencies.

The files are read from the data home (see :func:`skedge.datasets.get_data_home`);
they are never shipped with skedge. Every loader returns a Bunch that follows
the contract of :mod:`skedge.datasets._pairs`, so :func:`skedge.datasets.to_pairs`
works on all of them.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from ..spaces import FBNetSpace, NB201Space, OFASpace, get_space
from ._devices import load_devices
from ._home import data_file

__all__ = ["load_fbnet", "load_nb201", "load_ofa", "load_reference_designs"]

NB201_DATASETS = ("cifar10", "cifar100", "imagenet16")
NB201_SOURCES = {"help": "nb201/latency_help.csv", "oneproxy": "nb201/latency_oneproxy.csv"}
#: Key of each space in ``reference_archs.json``.
_REFERENCE_KEYS = {"nb201": "nasbench201", "fbnet": "fbnet", "ofa": "ofa"}

_SOURCES_TEXT = """\
Sources and licences (cite these works when reporting figures computed on this data):
HELP (Lee et al., NeurIPS 2021), MIT; OneProxy (Lu et al., SIGMETRICS 2022), MIT,
repackaging Eagle/BRP-NAS (Apache-2.0), HW-NAS-Bench (MIT) and nn-Meter (MIT);
NAS-Bench-201 / NATS-Bench accuracies (Dong et al.), MIT. Device features:
devices/devices.csv (spec sheets and assumptions in devices/DEVICES.md)."""


# ------------------------------------------------------------------ caching
def _file_key(relpath, data_home):
    """Resolved path, mtime and size of a data file: a cache key that notices edits."""
    path = data_file(relpath, data_home).resolve()
    st = path.stat()
    return str(path), st.st_mtime_ns, st.st_size


@lru_cache(maxsize=16)
def _read_csv_cached(path, mtime_ns, size):
    return pd.read_csv(path)


def _read_csv(relpath, data_home):
    # The cached frame is shared: callers must copy what they hand out.
    return _read_csv_cached(*_file_key(relpath, data_home))


def _read_reference_ids(key, data_home):
    path = data_file("reference_archs.json", data_home)
    refs = json.loads(Path(path).read_text())
    if key not in refs:
        raise ValueError(f"{path} has no reference designs for {key!r} (keys: {sorted(refs)}).")
    return np.asarray(refs[key], dtype=np.int64)


# ------------------------------------------------------------------ helpers
def _sorted_by_id(df, id_col, source):
    if df[id_col].duplicated().any():
        dup = df.loc[df[id_col].duplicated(), id_col].iloc[0]
        raise ValueError(f"{source} lists {id_col} {dup} twice.")
    return df.sort_values(id_col, kind="stable").reset_index(drop=True)


def _latency_table(df, id_col, non_device_cols):
    cols = [c for c in df.columns if c not in non_device_cols]
    lat = df.set_index(id_col)[cols].apply(pd.to_numeric, errors="coerce").astype(np.float64)
    lat.columns = [str(c) for c in lat.columns]
    return lat


def _device_rows(latency, data_home):
    devices = load_devices(data_home)
    missing = [c for c in latency.columns if c not in devices.index]
    if missing:
        raise ValueError(
            f"latency columns {missing} are not listed in devices/devices.csv of the data "
            f"home {data_file('devices/devices.csv', data_home).parent.parent}; add a row for "
            "each device setting (see devices/DEVICES.md)."
        )
    return devices.loc[list(latency.columns)].copy()


def _reference_positions(ids, key, data_home):
    refs = _read_reference_ids(key, data_home)
    pos = pd.Index(ids).get_indexer(refs)
    if (pos < 0).any():
        raise ValueError(
            f"reference design {refs[pos < 0][0]} ({key}) is not among the loaded designs."
        )
    return pos.astype(np.int64)


def _bunch(space, designs, ids, accuracy, latency, data_home, descr):
    latency = latency.copy()
    latency.index = pd.Index(np.array(ids, dtype=np.int64), name=latency.index.name)
    return Bunch(
        space=space,
        designs=np.array(designs, dtype=np.int64),
        design_ids=np.array(ids, dtype=np.int64),
        accuracy=None if accuracy is None else np.array(accuracy, dtype=np.float64),
        latency=latency,
        energy=None,
        devices=_device_rows(latency, data_home),
        reference_idx=_reference_positions(ids, _REFERENCE_KEYS[space.name], data_home),
        DESCR=descr,
    )


def _describe_devices(latency):
    sparse = [
        f"{c} ({int(n):,} designs)" for c, n in latency.notna().sum().items() if n < len(latency)
    ]
    text = f"{latency.shape[1]} device settings: {', '.join(latency.columns)}."
    if sparse:
        text += " Measured on a subset only (NaN elsewhere): " + ", ".join(sparse) + "."
    return text


# ------------------------------------------------------------------ NB201
@lru_cache(maxsize=4)
def _nb201_archs(key):
    path = key[0]
    df = _sorted_by_id(_read_csv_cached(*key), "arch_idx", path)
    space = NB201Space()
    designs = space.validate(df[space.choice_names].to_numpy())
    strings = np.array(space.to_strings(designs))
    bad = np.flatnonzero(strings != df["arch_str"].to_numpy())
    if len(bad):
        raise ValueError(
            f"{path}: arch_idx {df['arch_idx'].iloc[bad[0]]} has arch_str "
            f"{df['arch_str'].iloc[bad[0]]!r} but its e0..e5 columns spell {strings[bad[0]]!r}."
        )
    acc = df[[f"acc_{d}" for d in NB201_DATASETS]].to_numpy(np.float64)
    return df["arch_idx"].to_numpy(np.int64), designs, acc


@lru_cache(maxsize=4)
def _nb201_lookup(key):
    """``(code -> arch_idx, arch_idx -> design)`` tables of ``nb201/archs.csv``."""
    ids, designs, _ = _nb201_archs(key)
    n_options = NB201Space().n_options
    code_to_idx = np.full(int(np.prod(n_options)), -1, dtype=np.int64)
    code_to_idx[np.ravel_multi_index(designs.T, n_options)] = ids
    idx_to_design = np.zeros((ids.max() + 1, designs.shape[1]), dtype=np.int64)
    idx_to_design[ids] = designs
    return code_to_idx, idx_to_design


def nb201_arch_idx(designs, *, data_home=None):
    """Official NAS-Bench-201 ``arch_idx`` of each design (reads ``nb201/archs.csv``).

    Parameters
    ----------
    designs : array-like of shape (n, 6)
        NB201 designs (option indices).
    data_home : str or path-like, default=None
        See :func:`get_data_home`.

    Returns
    -------
    arch_idx : ndarray of int64, shape (n,)
    """
    space = NB201Space()
    code_to_idx, _ = _nb201_lookup(_file_key("nb201/archs.csv", data_home))
    return code_to_idx[np.ravel_multi_index(space.validate(designs).T, space.n_options)]


def nb201_designs(arch_idx, *, data_home=None):
    """NB201 designs of official ``arch_idx`` values (reads ``nb201/archs.csv``).

    Parameters
    ----------
    arch_idx : array-like of int
    data_home : str or path-like, default=None

    Returns
    -------
    designs : ndarray of int64, shape (n, 6)
    """
    _, idx_to_design = _nb201_lookup(_file_key("nb201/archs.csv", data_home))
    idx = np.asarray(arch_idx, dtype=np.int64).reshape(-1)
    bad = (idx < 0) | (idx >= len(idx_to_design))
    if bad.any():
        raise ValueError(f"arch_idx {idx[bad][0]} is outside 0..{len(idx_to_design) - 1}.")
    return idx_to_design[idx].copy()


def load_nb201(*, dataset="cifar10", sources=("help", "oneproxy"), data_home=None):
    """Load NAS-Bench-201 with the measured latencies of up to 30 device settings.

    Parameters
    ----------
    dataset : {"cifar10", "cifar100", "imagenet16"}, default="cifar10"
        Which NATS-Bench test accuracy (200 epochs, percent) fills ``accuracy``.
    sources : tuple of {"help", "oneproxy"}, default=("help", "oneproxy")
        Latency files to join by ``arch_idx``: HELP (19 settings, all 15,625
        cells) and OneProxy (11 settings, 1,999 cells; NaN for the others).
    data_home : str or path-like, default=None
        See :func:`skedge.datasets.get_data_home`.

    Returns
    -------
    bunch : Bunch
        The benchmark contract of :mod:`skedge.datasets._pairs`: ``space``
        (:class:`~skedge.spaces.NB201Space`), ``designs`` (15,625 x 6),
        ``design_ids`` (``arch_idx``, rows ordered by it), ``accuracy``,
        ``latency`` (ms, indexed by ``arch_idx``), ``energy`` (None),
        ``devices``, ``reference_idx`` and ``DESCR``.

    Raises
    ------
    FileNotFoundError
        When a data file is missing; the message says which file is expected where.

    Examples
    --------
    >>> from skedge.datasets import load_nb201
    >>> try:
    ...     bench = load_nb201()
    ... except FileNotFoundError:  # the real data is not installed here
    ...     bench = None
    >>> bench is None or bench.designs.shape == (15625, 6)
    True
    """
    if dataset not in NB201_DATASETS:
        raise ValueError(f"unknown NB201 dataset {dataset!r}; choose one of {NB201_DATASETS}.")
    sources = (sources,) if isinstance(sources, str) else tuple(sources)
    unknown = [s for s in sources if s not in NB201_SOURCES]
    if unknown or not sources:
        raise ValueError(
            f"sources must be a non-empty subset of {tuple(NB201_SOURCES)}, got {sources!r}."
        )
    sources = tuple(dict.fromkeys(sources))
    ids, designs, acc = _nb201_archs(_file_key("nb201/archs.csv", data_home))
    parts = []
    for src in sources:
        df = _sorted_by_id(_read_csv(NB201_SOURCES[src], data_home), "arch_idx", src)
        parts.append(_latency_table(df, "arch_idx", ["arch_idx"]).reindex(ids))
    clash = pd.Index([c for p in parts for c in p.columns])
    if clash.duplicated().any():
        raise ValueError(f"device setting {clash[clash.duplicated()][0]!r} appears in two sources.")
    latency = pd.concat(parts, axis=1)
    latency.index.name = "arch_idx"
    space = NB201Space()
    degenerate = space.is_degenerate(designs)
    near_zero = latency[degenerate] < 0.5
    zero_devices = [c for c in latency.columns if near_zero[c].any()]
    zero_text = (
        f"; {int(near_zero.any(axis=1).sum())} of them show < 0.5 ms on {', '.join(zero_devices)}"
        if zero_devices
        else ""
    )
    about = (
        f"{len(ids):,} cells of the NAS-Bench-201 space (6 edges x 5 ops), rows ordered by "
        "the official arch_idx; designs are op indices 0 none, 1 skip_connect, "
        "2 nor_conv_1x1, 3 nor_conv_3x3, 4 avg_pool_3x3 per edge (1<-0, 2<-0, 2<-1, 3<-0, "
        f"3<-1, 3<-2). accuracy: {dataset} test accuracy in percent after 200 epochs "
        "(NATS-Bench)."
    )
    quirks = [
        f"{int(degenerate.sum())} cells have no path from input to output "
        + "(NB201Space.is_degenerate): their output does not depend on the input, their "
        + f"accuracy is chance level{zero_text}",
        "phone latencies in HELP (samsung_a50, samsung_s7, essential_ph_1) are whole ms",
        "OneProxy's rice_pixel3 repeats HELP's pixel3; eagle_gtx is a GTX 1080 Ti like "
        + "1080ti_1 but measured in another setup",
        "HW-NAS-Bench Eyeriss/FPGA numbers are simulator estimates (not included here)",
        "no energy measurements (energy is None)",
    ]
    descr = "\n\n".join([
        "NAS-Bench-201 (NB201) with measured latencies.",
        about,
        f"Latency sources: {', '.join(sources)} (ms). " + _describe_devices(latency),
        "Known quirks: " + "; ".join(quirks) + ".",
        _SOURCES_TEXT,
    ])
    acc_col = NB201_DATASETS.index(dataset)
    return _bunch(space, designs, ids, acc[:, acc_col], latency, data_home, descr)


# ------------------------------------------------------------------ FBNet
@lru_cache(maxsize=4)
def _fbnet_table(key):
    path = key[0]
    df = _sorted_by_id(_read_csv_cached(*key), "fbnet_id", path)
    space = FBNetSpace()
    designs = space.validate(df[space.choice_names].to_numpy())
    parsed = space.from_strings(df["arch_str"].tolist())
    bad = np.flatnonzero((parsed != designs).any(axis=1))
    if len(bad):
        raise ValueError(
            f"{path}: fbnet_id {df['fbnet_id'].iloc[bad[0]]} has arch_str "
            f"{df['arch_str'].iloc[bad[0]]!r} that disagrees with its b0..b21 option indices."
        )
    latency = _latency_table(df, "fbnet_id", ["fbnet_id", "arch_str", *space.choice_names])
    return df["fbnet_id"].to_numpy(np.int64), designs, latency


def load_fbnet(*, data_home=None):
    """Load the FBNet space with HELP's latencies on 19 device settings.

    Parameters
    ----------
    data_home : str or path-like, default=None
        See :func:`skedge.datasets.get_data_home`.

    Returns
    -------
    bunch : Bunch
        The benchmark contract of :mod:`skedge.datasets._pairs`: ``space``
        (:class:`~skedge.spaces.FBNetSpace`), ``designs`` (5,000 x 22),
        ``design_ids`` (``fbnet_id``), ``accuracy`` (None: HELP has none),
        ``latency`` (ms), ``energy`` (None), ``devices``, ``reference_idx``
        and ``DESCR``.

    Examples
    --------
    >>> from skedge.datasets import load_fbnet
    >>> try:
    ...     bench = load_fbnet()
    ... except FileNotFoundError:  # the real data is not installed here
    ...     bench = None
    >>> bench is None or bench.designs.shape == (5000, 22)
    True
    """
    ids, designs, latency = _fbnet_table(_file_key("fbnet/latency_help.csv", data_home))
    about = (
        f"{len(ids):,} sampled FBNet networks (22 searchable blocks x 9 block types, option "
        "order k3_e1, k3_e1_g2, k3_e3, k3_e6, k5_e1, k5_e1_g2, k5_e3, k5_e6, skip as in "
        "HELP), rows ordered by fbnet_id. The b0..b21 indices were checked against the "
        "arch_str column. No accuracies (accuracy is None)."
    )
    descr = "\n\n".join([
        "FBNet with measured latencies (HELP).",
        about,
        "Latency (ms): " + _describe_devices(latency),
        "Known quirks: phone latencies (samsung_a50, samsung_s7, essential_ph_1) are whole "
        + "milliseconds; no energy measurements (energy is None).",
        _SOURCES_TEXT,
    ])
    return _bunch(FBNetSpace(), designs, ids, None, latency, data_home, descr)


# ------------------------------------------------------------------ OFA
@lru_cache(maxsize=4)
def _ofa_table(key):
    path = key[0]
    df = _sorted_by_id(_read_csv_cached(*key), "ofa_id", path)
    space = OFASpace()
    try:
        designs = space.from_table(df)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    latency = _latency_table(df, "ofa_id", ["ofa_id", *space.choice_names])
    _, first, inverse = np.unique(designs, axis=0, return_index=True, return_inverse=True)
    dup_rows = np.flatnonzero(first[inverse.reshape(-1)] != np.arange(len(designs)))
    duplicates = [
        (int(df["ofa_id"].iloc[first[inverse.reshape(-1)[i]]]), int(df["ofa_id"].iloc[i]))
        for i in dup_rows
    ]
    return df["ofa_id"].to_numpy(np.int64), designs, latency, tuple(duplicates)


def load_ofa(*, data_home=None):
    """Load the OFA MobileNetV3 space with HELP's GPU latencies (9 settings).

    The files hold option *values* (kernel 3/5/7, expand 3/4/6, depth 2/3/4,
    resolution in pixels); they are converted to option indices of
    :class:`~skedge.spaces.OFASpace` and canonicalized (blocks beyond a
    stage's depth set to option 0).

    Parameters
    ----------
    data_home : str or path-like, default=None
        See :func:`skedge.datasets.get_data_home`.

    Returns
    -------
    bunch : Bunch
        The benchmark contract of :mod:`skedge.datasets._pairs`: ``space``
        (``OFASpace()``), ``designs`` (5,000 x 46), ``design_ids``
        (``ofa_id``), ``accuracy`` (None), ``latency`` (ms), ``energy``
        (None), ``devices``, ``reference_idx`` and ``DESCR``. ``DESCR`` says
        whether two ``ofa_id`` denote the same canonical network (both rows are
        kept).

    Examples
    --------
    >>> from skedge.datasets import load_ofa
    >>> try:
    ...     bench = load_ofa()
    ... except FileNotFoundError:  # the real data is not installed here
    ...     bench = None
    >>> bench is None or bench.designs.shape == (5000, 46)
    True
    """
    ids, designs, latency, duplicates = _ofa_table(_file_key("ofa/latency_help.csv", data_home))
    if duplicates:
        shown = ", ".join(f"{a} = {b}" for a, b in duplicates[:10])
        dup_text = (
            f"{len(duplicates)} ofa_id denote the same canonical network as an earlier one "
            f"(both rows kept): {shown}{', ...' if len(duplicates) > 10 else ''}."
        )
    else:
        dup_text = "No two ofa_id denote the same canonical network."
    about = (
        f"{len(ids):,} sampled subnetworks of the Once-for-All MobileNetV3 space, rows "
        "ordered by ofa_id: per-block kernel (ks0..ks19) and expand ratio (e0..e19), depth "
        "per stage (d0..d4) and input resolution (r), stored in the file as values and "
        "converted to option indices of OFASpace(); inactive blocks are canonicalized to "
        f"option 0. {dup_text} No accuracies (accuracy is None)."
    )
    descr = "\n\n".join([
        "OFA MobileNetV3 with measured GPU latencies (HELP).",
        about,
        "Latency (ms): " + _describe_devices(latency),
        "Known quirks: titan_xp_* here and titanxp_* in NB201/FBNet are the same GPU model "
        + "under two names; GPUs only; no energy measurements (energy is None).",
        _SOURCES_TEXT,
    ])
    return _bunch(OFASpace(), designs, ids, None, latency, data_home, descr)


# ------------------------------------------------------------------ references
def load_reference_designs(space, *, data_home=None, return_ids=False):
    """The 10 reference designs of a space, whose latencies form a device signature.

    Parameters
    ----------
    space : {"nb201", "fbnet", "ofa"} or DesignSpace
        The space (``OFASpace(quantize=True)`` has no reference designs).
    data_home : str or path-like, default=None
        See :func:`skedge.datasets.get_data_home`.
    return_ids : bool, default=False
        Also return the benchmark ids (``arch_idx``, ``fbnet_id``, ``ofa_id``).

    Returns
    -------
    designs : ndarray of int64, shape (10, n_choices)
    ids : ndarray of int64, shape (10,)
        Only when ``return_ids`` is True.

    Examples
    --------
    >>> from skedge.datasets import load_reference_designs
    >>> try:
    ...     refs = load_reference_designs("nb201")
    ... except FileNotFoundError:  # the real data is not installed here
    ...     refs = None
    >>> refs is None or refs.shape == (10, 6)
    True
    """
    space = get_space(space)
    if space.name not in _REFERENCE_KEYS or getattr(space, "quantize", False):
        raise ValueError(f"{space!r} has no reference designs; choose nb201, fbnet or ofa.")
    ids = _read_reference_ids(_REFERENCE_KEYS[space.name], data_home)
    if space.name == "nb201":
        designs = nb201_designs(ids, data_home=data_home)
    else:
        if space.name == "fbnet":
            all_ids, all_designs, _ = _fbnet_table(_file_key("fbnet/latency_help.csv", data_home))
        else:
            all_ids, all_designs, *_ = _ofa_table(_file_key("ofa/latency_help.csv", data_home))
        pos = pd.Index(all_ids).get_indexer(ids)
        if (pos < 0).any():
            raise ValueError(
                f"reference design {ids[pos < 0][0]} of {space.name} is not in the data."
            )
        designs = all_designs[pos].copy()
    return (designs, ids) if return_ids else designs
