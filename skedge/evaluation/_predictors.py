"""Evaluation of the predictors on devices they never saw (``skedge evaluate-predictors``).

For every held-out piece of hardware (all its device settings held out
together), predictors are trained on the *other* devices only, then scored on
all measured designs of the held-out device, excluding the k designs granted
to few-shot methods. Methods, all on the same split:

``skedge``
    :class:`~skedge.crossdevice.CrossDeviceRegressor` with its defaults,
    fitted on the training devices and adapted to the test device:
    ``adapt(features)`` at k = 0, ``adapt(features, shots, y)`` at k > 0.
    The evaluation holds no method logic of its own.
``flops``
    log latency affine in log MACs (fitted on the pooled training devices at
    k = 0, on the k shots otherwise).
``train_average``
    mean over training devices of per-device standardized log latency (scale:
    the training devices' mean at k = 0, affine on the k shots otherwise).
``linear_mix`` (k > 0)
    non-negative mix of training devices' log latencies plus an intercept,
    fitted on the k shots (``KnownDeviceMix(method="nnls")``).

Targets are floored per device at its 1st percentile before any log and in
scoring (NAS-Bench-201's degenerate cells read ~0 ms on some devices).
"""

from __future__ import annotations

import copy
import sys
import time
import zlib

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy.stats import spearmanr
from sklearn.utils import check_random_state

from .. import datasets
from ..crossdevice import CrossDeviceRegressor
from ..devices import DEVICE_FEATURES
from ..fewshot import KnownDeviceMix, fit_log_affine
from ..model_selection import LeaveOneHardwareOut
from ..spaces import get_space

__all__ = ["evaluate_predictors", "fit_fold_model", "format_table", "granted_shots",
           "load_benchmark", "score_fold", "signature_designs"]

METHODS = ("skedge", "flops", "train_average", "linear_mix")
N_SIGNATURE = 10


def load_benchmark(space, *, data_home=None, extra=None):
    """Load the real benchmark of a space, optionally joined with measurement files."""
    space = get_space(space)
    loaders = {"nb201": datasets.load_nb201, "fbnet": datasets.load_fbnet, "ofa": datasets.load_ofa}
    if space.name not in loaders or getattr(space, "quantize", False):
        raise ValueError(f"no real benchmark for {space!r}; choose nb201, fbnet or ofa.")
    bench = loaders[space.name](data_home=data_home)
    for path in extra or []:
        bench = datasets.merge_benchmarks(
            bench, datasets.load_measurements(path, space=space, data_home=data_home)
        )
    return bench


def signature_designs(bench, k=N_SIGNATURE):
    """Row positions of the k signature designs measured on every device.

    The space's reference designs where every device has them, completed with
    designs measured everywhere spread over the MACs range (deterministic).
    """
    measured = bench.latency.notna().all(axis=1).to_numpy()
    if measured.sum() < k:
        raise ValueError(
            f"only {int(measured.sum())} designs are measured on every device; the evaluation "
            f"needs {k} (the signature designs every device shares). Measure the space's "
            "reference designs on the extra device (`skedge measure --include-reference`) "
            "or more designs that the benchmark's devices also have, or leave it out of --extra."
        )
    chosen = [int(i) for i in bench.reference_idx if measured[i]][:k]
    if len(chosen) < k:
        pool = np.flatnonzero(measured & ~np.isin(np.arange(len(measured)), chosen))
        macs = bench.space.macs(bench.designs[pool])
        order = pool[np.argsort(macs, kind="stable")]
        picks = np.linspace(0, len(order) - 1, k - len(chosen) + 2)[1:-1].round().astype(int)
        chosen += [int(order[p]) for p in picks]
    return np.array(chosen, dtype=np.int64)


def _scores(pred, truth):
    rel = np.abs(pred - truth) / truth
    return {
        "spearman": float(spearmanr(pred, truth).statistic),
        "mape": float(rel.mean()),
        "within_10pct": float((rel <= 0.10).mean()),
    }


def evaluate_predictors(
    space="nb201",
    *,
    data_home=None,
    test_devices=None,
    train_devices=None,
    shots=(0, 10),
    extra=None,
    n_train_designs=None,
    model_params=None,
    diagnostics=False,
    n_jobs=None,
    random_state=0,
    verbose=1,
):
    """Evaluate cross-device latency prediction on unseen hardware.

    Parameters
    ----------
    space : {"nb201", "fbnet", "ofa"}
    data_home : str, default=None
    test_devices : list of str, default=None
        Device settings to report. Default: leave-one-hardware-out over all.
        Settings sharing hardware with a test device are held out with it.
    train_devices : list of str, default=None
        Known devices to train on (default: every device not held out), e.g.
        HELP's published NB201 split. Settings sharing hardware with the
        test device are removed from it in each fold.
    shots : tuple of int, default=(0, 10)
        Measured designs granted per test device: up to 10 come from the
        reference designs (a seeded subset below 10), beyond that random
        measured designs, seeded per device and k.
    extra : list of str, default=None
        Measurement CSVs (``skedge measure``) joined as extra devices.
    n_train_designs : int, default=None
        Designs sampled per training device (plus the reference designs);
        None: every design measured on it.
    model_params : dict, default=None
        Parameters of :class:`~skedge.crossdevice.CrossDeviceRegressor` that
        differ from its defaults (e.g. ``{"max_epochs": 2}`` for a quick run).
    diagnostics : bool, default=False
        Also report ``skedge_networks``: the model with ``blend=0`` (networks
        and shot head only), and ``oracle_mix`` (k > 0): the non-negative
        device mix fitted on all measured designs of the test device, an
        upper bound for any mix of the training devices, not a method.
    n_jobs : int, default=None
        Folds run in parallel through joblib (each with one torch thread).
    random_state : int, default=0
    verbose : int, default=1

    Returns
    -------
    records : list of dict
        ``{"device", "shots", "method", "spearman", "mape", "within_10pct",
        "n_designs", "n_train_devices"}``.
    """
    space = get_space(space)
    shots = tuple(int(k) for k in shots)
    if not shots or any(k < 0 for k in shots):
        raise ValueError(f"shots must be non-negative numbers of designs; got {shots}.")
    bench = load_benchmark(space, data_home=data_home, extra=extra)
    devices = list(bench.latency.columns)
    for option, names in (("test_devices", test_devices), ("train_devices", train_devices)):
        if names is not None:
            if not list(names):
                raise ValueError(f"the list of {option} is empty.")
            unknown = [d for d in names if d not in devices]
            if unknown:
                raise ValueError(f"{option}: unknown device {unknown[0]!r}; known: {devices}.")
    latency = datasets.floor_latency(bench.latency)
    logy = np.log(latency)
    sig_idx = signature_designs(bench)
    cv = LeaveOneHardwareOut(devices=bench.devices, test_devices=test_devices)
    group_of = cv.hardware_of(devices)
    reported = devices if test_devices is None else list(test_devices)
    folds = {}
    for dev in reported:
        folds.setdefault(group_of[dev], []).append(dev)
    pool = devices if train_devices is None else list(train_devices)
    # A fold's seed depends on its hardware group only, not on which other
    # devices are tested: scoring one device alone reproduces the full run.
    base = int(check_random_state(random_state).randint(2**31 - 1))
    jobs = [dict(held=[d for d in devices if group_of[d] == group],
                 train=[d for d in pool if group_of[d] != group],
                 reported=names, seed=_stable_seed(base, group))
            for group, names in sorted(folds.items())]
    context = dict(bench=bench, logy=logy, sig_idx=sig_idx, shots=shots,
                   model_params=model_params or {}, n_train_designs=n_train_designs,
                   diagnostics=diagnostics)
    t_start = time.perf_counter()
    # Folds are independent: with n_jobs > 1 each worker trains with one torch
    # thread, which uses small-matrix CPUs better than one fold on many threads.
    threads = 1 if (n_jobs or 1) != 1 else None
    out = Parallel(n_jobs=n_jobs, return_as="generator")(
        delayed(_run_fold)(job, context, threads) for job in jobs
    )
    records = []
    for f, (job, (fold_records, fit_s)) in enumerate(zip(jobs, out)):
        records += fold_records
        if verbose:
            summary = ", ".join(
                f"{r['device']} k={r['shots']}: rho={r['spearman']:.3f}"
                for r in fold_records if r["method"] == "skedge"
            )
            print(
                f"[{f + 1}/{len(jobs)}] held out {job['held']} (fit {fit_s:.0f}s, "
                f"{time.perf_counter() - t_start:.0f}s total) {summary}",
                file=sys.stderr, flush=True,
            )
    return records


def fit_fold_model(job, *, bench, sig_idx, shots, model_params, n_train_designs, threads=None,
                   **_):
    """The :class:`CrossDeviceRegressor` of one fold, fitted on its training devices."""
    train = job["train"]
    if len(train) < 2:
        raise ValueError(f"holding out {job['held']} leaves {len(train)} training device(s); "
                         "at least 2 are needed.")
    X, y, groups = datasets.to_pairs(bench, devices=train)
    params = dict(space=bench.space, reference_designs=bench.designs[sig_idx],
                  zero_shot=0 in shots, n_train_designs=n_train_designs,
                  random_state=job["seed"], n_threads=threads)
    return CrossDeviceRegressor(**{**params, **model_params}).fit(X, y, groups=groups)


def _run_fold(job, ctx, threads):
    """Train on one fold's devices and score its reported test devices."""
    t0 = time.perf_counter()
    model = fit_fold_model(job, threads=threads, **ctx)
    fit_s = time.perf_counter() - t0
    return score_fold(model, job, **ctx), fit_s


def granted_shots(measured, sig_idx, k, seed):
    """Row positions of the k designs granted to a test device (seeded per device and k)."""
    rng = np.random.RandomState(seed)
    if k <= len(sig_idx):
        return np.sort(rng.choice(sig_idx, size=k, replace=False)) if k < len(sig_idx) \
            else np.asarray(sig_idx)
    extra_pool = np.setdiff1d(measured, sig_idx)
    return np.concatenate([sig_idx, rng.choice(extra_pool, size=k - len(sig_idx),
                                               replace=False)])


def score_fold(model, job, *, bench, logy, sig_idx, shots, diagnostics, **_):
    """Score the fitted model and the baselines on the fold's reported devices."""
    train = job["train"]
    macs = np.log(bench.space.macs(bench.designs).astype(np.float64))
    # FLOPs baseline at k = 0: log latency affine in log MACs over the pooled
    # training devices; it does not depend on the test device, so fit it once.
    pooled = logy[train].to_numpy()
    ok = np.isfinite(pooled)
    flops_fit = np.polyfit(np.broadcast_to(macs[:, None], pooled.shape)[ok], pooled[ok], 1)
    records = []
    for dev in job["reported"]:
        col = logy[dev].to_numpy()
        measured = np.flatnonzero(np.isfinite(col))
        truth = np.exp(col)
        feats = bench.devices.loc[dev, list(DEVICE_FEATURES)].to_numpy(np.float64)
        covering = [d for d in train if logy[d].iloc[measured].notna().all()]
        known = np.exp(logy[covering].to_numpy()[measured])
        for k in shots:
            given = granted_shots(measured, sig_idx, k, _stable_seed(job["seed"], dev, k))
            args = (bench.designs[given], truth[given]) if k else ()
            preds = {"skedge": model.adapt(feats, *args, name=dev).predict(
                bench.designs[measured])}
            if diagnostics:
                # A shallow copy shares the fitted state and leaves the model's parameters
                # as they were, whatever happens while the networks alone are scored.
                alone = copy.copy(model).set_params(blend=0.0, part_weights="fixed")
                preds["skedge_networks"] = alone.adapt(feats, *args).predict(
                    bench.designs[measured])
            preds.update(_baselines(k, known, truth, measured, given, macs, flops_fit,
                                    diagnostics))
            keep = ~np.isin(measured, given)
            for method, pred in preds.items():
                rec = {"device": dev, "shots": k, "method": method}
                rec.update(_scores(pred[keep], truth[measured][keep]))
                rec["n_designs"] = int(keep.sum())
                rec["n_train_devices"] = len(train)
                records.append(rec)
    return records


def _baselines(k, known, truth, measured, given, macs, flops_fit, diagnostics):
    """What skedge is compared with: FLOPs, the training average and the device mix."""
    preds = {}
    logk = np.log(known)
    zT = (logk - logk.mean(0)) / logk.std(0)
    if k == 0:
        preds["flops"] = np.exp(np.polyval(flops_fit, macs[measured]))
        if known.shape[1]:
            preds["train_average"] = np.exp(logk.mean(axis=1))
        return preds
    g = np.searchsorted(measured, given)  # positions of the shots in `measured`
    measured_ms = truth[given]
    preds["flops"] = _calibrate(np.exp(macs[measured]), g, measured_ms, shrinkage=0.0)
    if known.shape[1]:
        preds["train_average"] = _calibrate(np.exp(zT.mean(axis=1)), g, measured_ms,
                                            shrinkage=0.0)
        preds["linear_mix"] = KnownDeviceMix(method="nnls").fit(
            known[g], measured_ms).predict(known)
        if diagnostics:
            # Not a method: the device mix fitted on *every* measured design, an
            # upper bound on how well the training devices explain this one.
            preds["oracle_mix"] = KnownDeviceMix(method="nnls").fit(
                known, truth[measured]).predict(known)
    return preds


def _stable_seed(*parts):
    """A 31-bit seed from ints and strings, the same in every process (unlike ``hash``)."""
    words = [p if isinstance(p, int) else zlib.crc32(str(p).encode()) for p in parts]
    return int(np.random.SeedSequence(words).generate_state(1)[0] >> 1)


def _calibrate(raw, g, measured, shrinkage=1.0):
    a, b = fit_log_affine(raw[g], measured, shrinkage=shrinkage)
    return np.exp(a + b * np.log(np.maximum(raw, 1e-12)))


def format_table(records):
    """A readable table: one row per (device, shots), one column block per method."""
    df = pd.DataFrame(records)
    if df.empty:
        return "(no records)"
    wide = df.pivot_table(index=["shots", "device"], columns="method",
                          values=["spearman", "within_10pct"])
    # The four methods first, then any diagnostics (``diagnostics=True``) in record order.
    methods = list(METHODS) + [m for m in dict.fromkeys(df["method"]) if m not in METHODS]
    wide = wide.reindex(columns=[(m, meth) for m in ("spearman", "within_10pct")
                                 for meth in methods if (m, meth) in wide.columns])
    means = wide.groupby(level="shots").mean()
    means.index = pd.MultiIndex.from_tuples([(k, "MEAN") for k in means.index])
    mins = wide.groupby(level="shots").min()
    mins.index = pd.MultiIndex.from_tuples([(k, "MIN") for k in mins.index])
    out = pd.concat([wide, means, mins]).sort_index(level=0, sort_remaining=False)
    out.columns = [f"{meth}:{'rho' if m == 'spearman' else 'w10'}" for m, meth in out.columns]
    return out.to_string(float_format=lambda v: f"{v:.3f}")
