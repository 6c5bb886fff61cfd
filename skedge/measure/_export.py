"""Devices that cannot run Python: ONNX export, a manifest, and imported timings.

:func:`export_onnx` writes one ONNX file per design plus ``manifest.csv``
(one row per file: ``model_id``, the design, its benchmark id). Every file
carries the space and design in its metadata, so a file of another space is
refused. A phone or board times the files with its own tools (e.g. TFLite's
``benchmark_model``, onnxruntime's ``onnxruntime_perf_test``, ``trtexec``);
:func:`import_timings` turns the CSV of latencies keyed by ``model_id``
(or file name, or benchmark id) into a measurement file.
"""

from __future__ import annotations

import io
import sys
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .. import models  # models.build_model, looked up at call time (tests replace it)
from .._version import __version__
from ..datasets import read_device_file
from ..datasets._measurement_format import (
    _append_line,
    _check_header_holds,
    _prepare_file,
    _space_key,
    read_measurement_file,
)
from ..devices import DEVICE_FEATURES, DEVICE_KINDS, validate_device_table
from ..spaces import get_space
from ._designs import select_designs
from ._optional import optional_import
from ._timers import _input, _positive

__all__ = ["export_onnx", "import_timings", "read_manifest"]

MANIFEST = "manifest.csv"
_KEYS = ("model_id", "file", "design_id")
_OPTIONAL_TIMINGS = ("latency_mean_ms", "latency_std_ms", "latency_iqr_ms", "latency_min_ms",
                     "n_runs", "threads", "energy_mj")


def export_onnx(space, out_dir, *, designs=None, n=None, include_reference=False,
                random_state=None, batch_size=1, data_home=None, opset=17, progress=False):
    """Export designs as ONNX models with a manifest, for devices that cannot run Python.

    Parameters
    ----------
    space : DesignSpace or str
    out_dir : str or path-like
        Folder for ``<space>_<NNNNN>.onnx`` and ``manifest.csv``; it must not
        hold a manifest already.
    designs, n, include_reference, random_state, data_home
        Which designs, as in :func:`measure` (reference designs first).
    batch_size : int, default=1
        The static batch size of the input (vendor converters want static
        shapes); one export per batch size.
    opset : int, default=17
        ONNX opset of the (TorchScript-based) exporter.
    progress : bool, default=False
        One line per file on stderr.

    Returns
    -------
    manifest : pandas.DataFrame
        ``model_id``, ``file``, ``space``, the design columns, ``design_str``,
        ``design_id`` (benchmark id where known), ``reference_rank``,
        ``batch_size``, ``input_shape``, ``opset``, ``skedge_version``.

    Examples
    --------
    >>> import tempfile
    >>> from skedge.measure import export_onnx
    >>> manifest = export_onnx("nb201", tempfile.mkdtemp(), designs=[[1] * 6, [0] * 6])
    >>> manifest["model_id"].tolist()
    ['nb201_00000', 'nb201_00001']
    """
    # onnx is optional (the "profile" extra): the exporter's output is edited with it.
    onnx = optional_import("onnx", "exporting ONNX models")
    space = get_space(space)
    (batch_size,) = _positive(batch_size=batch_size)
    X, ranks, ids = select_designs(space, designs=designs, n=n,
                                   include_reference=include_reference,
                                   random_state=random_state, data_home=data_home)
    out_dir = Path(out_dir)
    if (out_dir / MANIFEST).exists():
        raise ValueError(f"{out_dir / MANIFEST} already exists; export into another folder.")
    out_dir.mkdir(parents=True, exist_ok=True)
    key = _space_key(space)
    rows = []
    for i, x in enumerate(X):
        model = models.build_model(space, x)
        model_id = f"{key}_{i:05d}"
        design_str = space.to_string(x)
        buf = io.BytesIO()
        with warnings.catch_warnings(), torch.inference_mode():
            # The TorchScript-based exporter is deprecated in favour of the dynamo one,
            # which needs onnxscript and more; it exports these plain CNNs exactly.
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (_input(model.input_shape, batch_size, 0),), buf,
                              dynamo=False, input_names=["input"], output_names=["logits"],
                              opset_version=opset)
        proto = onnx.load_from_string(buf.getvalue())
        onnx.helper.set_model_props(proto, {"skedge_space": key, "skedge_design": design_str,
                                            "skedge_model_id": model_id})
        onnx.save(proto, out_dir / f"{model_id}.onnx")
        rows.append({"model_id": model_id, "file": f"{model_id}.onnx", "space": key,
                     **{c: int(v) for c, v in zip(space.choice_names, x)},
                     "design_str": design_str, "design_id": ids[i], "reference_rank": ranks[i],
                     "batch_size": batch_size,
                     "input_shape": "x".join(str(d) for d in (batch_size, *model.input_shape)),
                     "opset": opset, "skedge_version": __version__})
        if progress:
            print(f"[{i + 1}/{len(X)}] {model_id}.onnx  {design_str[:70]}", file=sys.stderr)
    manifest = pd.DataFrame(rows)
    for col in ("design_id", "reference_rank"):
        manifest[col] = manifest[col].astype("Int64")
    manifest.to_csv(out_dir / MANIFEST, index=False)
    manifest.attrs["folder"] = str(out_dir)
    return manifest


def read_manifest(models, *, space=None, check_files=True):
    """Read and check the manifest of an ONNX export.

    Parameters
    ----------
    models : str or path-like
        The export folder or its ``manifest.csv``.
    space : DesignSpace or str, default=None
        The expected space; a manifest or ONNX file of another is refused.
    check_files : bool, default=True
        Also open every ONNX file and check that its metadata names the
        manifest's space and design (needs ``onnx``).

    Returns
    -------
    manifest : pandas.DataFrame
        As :func:`export_onnx` returned it; ``attrs["folder"]`` is the folder.

    Raises
    ------
    FileNotFoundError
        For a missing manifest or ONNX file.
    ValueError
        For a manifest or ONNX file of another space or design, naming it.

    Examples
    --------
    >>> import tempfile
    >>> from skedge.measure import export_onnx, read_manifest
    >>> folder = tempfile.mkdtemp()
    >>> _ = export_onnx("nb201", folder, designs=[[1] * 6])
    >>> read_manifest(folder, space="fbnet")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: ...manifest.csv lists models of space ['nb201'], not 'fbnet'.
    """
    path = Path(models)
    path = path / MANIFEST if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"no {MANIFEST} at {path}: give the folder skedge export wrote.")
    manifest = pd.read_csv(path, dtype={"model_id": str, "file": str, "space": str,
                                        "design_str": str, "design_id": "Int64",
                                        "reference_rank": "Int64"})
    missing = [c for c in ("model_id", "file", "space", "design_str", "batch_size")
               if c not in manifest.columns]
    if missing or manifest.empty:
        raise ValueError(f"{path} is not a skedge export manifest (lacks {missing or 'rows'}).")
    recorded = sorted(set(manifest["space"]))
    space = get_space(space if space is not None else recorded[0])
    if recorded != [_space_key(space)]:
        raise ValueError(f"{path} lists models of space {recorded}, not {_space_key(space)!r}.")
    manifest.attrs["folder"] = str(path.parent)
    if check_files:
        # onnx is optional (the "profile" extra): it reads the files' metadata.
        onnx = optional_import("onnx", "checking ONNX models")
        for file, design in zip(manifest["file"], manifest["design_str"]):
            f = path.parent / file
            if not f.is_file():
                raise FileNotFoundError(f"{f}, listed in {path}, does not exist.")
            try:
                props = {p.key: p.value for p in onnx.load(f, load_external_data=False)
                         .metadata_props}
            except Exception as exc:  # noqa: BLE001 - any parse failure means a bad file
                raise ValueError(f"{f} is not a readable ONNX model ({exc}).") from None
            got = props.get("skedge_space")
            if got != _space_key(space) or props.get("skedge_design") != design:
                what = (f"a model of space {got!r}" if got else "not a skedge export (no metadata)")
                raise ValueError(f"{f} is {what}, not the {_space_key(space)!r} design "
                                 f"{design!r} that {path} lists.")
    return manifest


def _device_row(device_features, device_name, batch_size):
    if device_features is None:
        row = dict.fromkeys(DEVICE_FEATURES, np.nan)
    elif isinstance(device_features, dict):
        table = validate_device_table(pd.DataFrame([{"device": device_name, **device_features}]))
        row = table.iloc[0].to_dict()
    else:
        table = read_device_file(device_features)
        if len(table) != 1:
            raise ValueError(f"{device_features} holds {len(table)} device rows, not one.")
        row = table.iloc[0].to_dict()
    row["batch_size"] = float(batch_size)
    if np.isfinite(row["kind"]):
        row["kind"] = DEVICE_KINDS[int(row["kind"])]
    return row


def import_timings(models, timings, out, *, device_name, device_features=None, resume=False,
                   progress=True):
    """Turn latencies measured elsewhere into a measurement file.

    Parameters
    ----------
    models : str or path-like
        The export folder (or its manifest) the device timed.
    timings : str or path-like
        CSV with a key column - ``model_id``, ``file`` (the ONNX file name) or
        ``design_id`` (benchmark id) - and ``latency_ms``; optional
        ``latency_mean_ms``, ``latency_std_ms``, ``latency_iqr_ms``,
        ``latency_min_ms``, ``n_runs``, ``threads`` and ``energy_mj``.
    out : str or path-like
        Measurement CSV to write (``resume`` to add to one).
    device_name : str
        The device setting's name.
    device_features : str, path-like or dict, default=None
        Its feature row: a JSON/CSV file (as ``skedge apply --device``) or a
        dict of :data:`~skedge.devices.DEVICE_FEATURES`; unknown (NaN) if None.
    resume : bool, default=False
        Add to an existing file, skipping designs it holds for ``device_name``.
    progress : bool, default=True

    Returns
    -------
    frame : pandas.DataFrame
        The whole file after the import.

    Raises
    ------
    ValueError
        Before anything is written: a timings file without a key or
        ``latency_ms`` column, ids the manifest does not list (named), a model
        timed twice.

    Examples
    --------
    >>> import os, tempfile
    >>> import pandas as pd
    >>> from skedge.measure import export_onnx, import_timings
    >>> folder = tempfile.mkdtemp()
    >>> manifest = export_onnx("nb201", folder, designs=[[1] * 6])
    >>> csv = os.path.join(folder, "phone.csv")
    >>> pd.DataFrame({"model_id": ["nb201_00000"], "latency_ms": [1.5]}).to_csv(csv, index=False)
    >>> df = import_timings(folder, csv, os.path.join(folder, "m.csv"), device_name="phone",
    ...                     progress=False)
    >>> df[["device", "latency_ms", "backend"]].values.tolist()
    [['phone', 1.5, 'external']]
    """
    manifest = read_manifest(models, check_files=False)
    space = get_space(manifest["space"].iloc[0])
    timings = Path(timings)
    table = pd.read_csv(timings, dtype=dict.fromkeys(_KEYS, str))
    key = next((k for k in _KEYS if k in table.columns), None)
    if key is None or "latency_ms" not in table.columns:
        raise ValueError(f"{timings} needs a key column ({', '.join(_KEYS)}) and latency_ms; "
                         f"it has {list(table.columns)}.")
    known = manifest[key].astype(str)
    if key == "file":
        table["file"] = [Path(str(f)).name for f in table["file"]]
    wanted = table[key].astype(str)
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        raise ValueError(f"{timings}: {key} {unknown[:5]}{' ...' if len(unknown) > 5 else ''} "
                         f"not listed in the manifest of {manifest.attrs['folder']}.")
    if wanted.duplicated().any():
        raise ValueError(f"{timings} times {key} {wanted[wanted.duplicated()].iloc[0]!r} twice.")
    batch_size = int(manifest["batch_size"].iloc[0])
    features = _device_row(device_features, device_name, batch_size)
    header, existing = _prepare_file(out, space, resume=resume, tool="skedge import-timings")
    _check_header_holds(header, {"backend": "external"}, out)
    held = set()
    if existing is not None and len(existing):
        held = set(existing.loc[existing["device"] == device_name, "design_str"])
    by_key = manifest.assign(_key=known).set_index("_key")
    out = Path(out)
    write_header = not out.exists() or out.stat().st_size == 0
    n_new = 0
    with open(out, "a", encoding="utf-8", newline="") as f:
        if write_header:
            _append_line(f, header, {c: c for c in header})
        for _, t in table.iterrows():
            m = by_key.loc[str(t[key])]
            if m["design_str"] in held:
                continue
            latency = pd.to_numeric(pd.Series([t["latency_ms"]]), errors="coerce").iloc[0]
            ok = bool(np.isfinite(latency) and latency > 0)
            row = {"device": device_name, "space": m["space"],
                   **{c: int(m[c]) for c in space.choice_names},
                   "design_str": m["design_str"],
                   "design_id": None if pd.isna(m["design_id"]) else int(m["design_id"]),
                   "reference_rank": None if pd.isna(m["reference_rank"])
                   else int(m["reference_rank"]),
                   "latency_ms": latency if ok else None,
                   **{c: t[c] for c in _OPTIONAL_TIMINGS if c in table.columns and pd.notna(t[c])},
                   "status": "ok" if ok else "failed",
                   "error": "" if ok else f"no positive latency_ms in {timings.name}",
                   "backend": "external", "target": "", "cuda_graphs": 0, "round": 1,
                   **features, "skedge_version": __version__,
                   "timestamp": datetime.now(UTC).isoformat(timespec="seconds")}
            _append_line(f, header, row)
            n_new += 1
    if progress:
        print(f"skedge import-timings: {n_new} rows for {device_name!r} into {out} "
              f"({len(table) - n_new} already there).", file=sys.stderr)
    return read_measurement_file(out)
