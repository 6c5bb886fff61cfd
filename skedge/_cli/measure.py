"""The ``skedge measure``, ``skedge export`` and ``skedge import-timings`` sub-commands."""

from __future__ import annotations

from ..measure import export_onnx, import_timings, measure, read_designs_file, repeatability
from ..spaces import get_space

__all__ = ["register"]


def _designs_arguments(p, verb):
    p.add_argument("--space", required=True, help="nb201, fbnet, ofa or ofa-quant")
    p.add_argument("--n", type=int, default=None, help=f"number of designs to sample and {verb}")
    p.add_argument("--designs", default=None, metavar="FILE",
                   help="CSV with design columns or design strings, or one string per line")
    p.add_argument("--random-state", type=int, default=0)
    p.add_argument("--data-home", default=None, help="folder of the real data (SKEDGE_DATA)")


def register(subparsers):
    """Add the ``measure``, ``export`` and ``import-timings`` sub-commands."""
    p = subparsers.add_parser(
        "measure",
        help="time designs on this machine (CPU, CUDA GPU or onnxruntime) into a resumable CSV",
        description=(
            "Build the network of each design and time its inference on this CPU or a CUDA "
            "GPU (torch.utils.benchmark: warm-up runs, then repeated timed runs), or time "
            "exported ONNX models with onnxruntime; optionally the energy per inference "
            "(NVML on a GPU, RAPL on a CPU). One CSV row per design, flushed as it finishes; "
            "--resume continues a killed run."
        ),
    )
    _designs_arguments(p, "measure")
    p.add_argument("--include-reference", action="store_true",
                   help="also measure the space's 10 reference designs (needs the data home)")
    p.add_argument("--out", required=True, help="output CSV file")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    p.add_argument("--backend", choices=["torch", "onnxruntime"], default="torch")
    p.add_argument("--models", default=None, metavar="DIR",
                   help="folder written by skedge export (--backend onnxruntime)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--rounds", type=int, default=1,
                   help="passes over the design list (2 shows how repeatable the ranking is)")
    p.add_argument("--cuda-graphs", action="store_true",
                   help="time CUDA-graph replays (no launch overhead); a separate setting")
    p.add_argument("--energy", action="store_true",
                   help="also measure energy per inference (NVML on a GPU, RAPL on a CPU)")
    p.add_argument("--energy-seconds", type=float, default=1.0,
                   help="minimum length of each design's energy loop (s)")
    p.add_argument("--idle-seconds", type=float, default=2.0,
                   help="length of the idle-power baseline (s)")
    p.add_argument("--quantize", choices=["int8"], default=None,
                   help="time the int8 post-training-quantized networks")
    p.add_argument("--resume", action="store_true",
                   help="append to an existing file, skipping designs it holds")
    p.add_argument("--device-name", default=None,
                   help="device-setting name; default local_<cpu>_t<threads> or cuda_<gpu>")
    p.add_argument("--quiet", action="store_true", help="no per-design progress lines")
    p.set_defaults(func=_run_measure)

    e = subparsers.add_parser(
        "export",
        help="write designs as ONNX models + manifest.csv for phones and boards",
        description=(
            "Export designs as ONNX models (static batch size) with a manifest of their "
            "ids, to time them on a device that cannot run Python; read the latencies back "
            "with skedge import-timings."
        ),
    )
    _designs_arguments(e, "export")
    e.add_argument("--reference", action="store_true",
                   help="export the space's 10 reference designs first (needs the data home)")
    e.add_argument("--format", choices=["onnx"], default="onnx")
    e.add_argument("--batch-size", type=int, default=1)
    e.add_argument("--opset", type=int, default=17)
    e.add_argument("--out", required=True, metavar="DIR", help="output folder")
    e.set_defaults(func=_run_export)

    t = subparsers.add_parser(
        "import-timings",
        help="turn latencies measured elsewhere (keyed by model_id) into a measurement CSV",
        description=(
            "Read a CSV of per-model latencies measured on another device (columns model_id, "
            "file or design_id, and latency_ms) against the manifest of skedge export, and "
            "write them as a skedge measurement file."
        ),
    )
    t.add_argument("--models", required=True, metavar="DIR", help="the export folder")
    t.add_argument("--timings", required=True, metavar="FILE",
                   help="CSV with model_id, file or design_id, and latency_ms (ms)")
    t.add_argument("--device-name", required=True)
    t.add_argument("--device-features", default=None, metavar="FILE",
                   help="JSON/CSV feature row of the device (as skedge apply --device)")
    t.add_argument("--out", required=True, help="measurement CSV to write")
    t.add_argument("--resume", action="store_true", help="add to an existing file")
    t.set_defaults(func=_run_import)


def _designs(args):
    space = get_space(args.space)
    if args.designs is None:
        return space, None
    return space, read_designs_file(args.designs, space, data_home=args.data_home)


def _run_measure(args):
    space, designs = _designs(args)
    frame = measure(
        space, args.out, designs=designs, n=args.n, include_reference=args.include_reference,
        random_state=args.random_state, threads=args.threads, batch_size=args.batch_size,
        warmup=args.warmup, repeats=args.repeats, quantize=args.quantize,
        device_name=args.device_name, resume=args.resume, data_home=args.data_home,
        progress=not args.quiet, device=args.device, backend=args.backend, models=args.models,
        cuda_graphs=args.cuda_graphs, rounds=args.rounds, energy=args.energy,
        energy_seconds=args.energy_seconds, idle_seconds=args.idle_seconds,
    )
    ok = frame[frame["status"] == "ok"]
    rep = repeatability(frame)
    for device, rows in frame.groupby("device", sort=False):
        good = rows[rows["status"] == "ok"]
        span = (f", {good['latency_ms'].min():.3f}..{good['latency_ms'].max():.3f} ms"
                if len(good) else "")
        if device in rep.index:
            span += f", median IQR/median {rep.loc[device, 'median_rel_iqr']:.3f}"
            if rep.loc[device, "round_spearman"] == rep.loc[device, "round_spearman"]:
                span += (f", rounds 1 vs 2: Spearman {rep.loc[device, 'round_spearman']:.3f}, "
                         f"median |diff| {100 * rep.loc[device, 'round_rel_diff']:.1f} %")
        if good["energy_mj"].notna().any():
            span += (f", {good['energy_mj'].min():.3f}..{good['energy_mj'].max():.3f} mJ")
        print(f"{device}: {len(good)} ok, {len(rows) - len(good)} failed{span}")
    print(f"wrote {args.out} ({len(frame)} rows, {len(ok)} ok)")
    return 0


def _run_export(args):
    space, designs = _designs(args)
    manifest = export_onnx(space, args.out, designs=designs, n=args.n,
                           include_reference=args.reference, random_state=args.random_state,
                           batch_size=args.batch_size, data_home=args.data_home,
                           opset=args.opset, progress=True)
    print(f"wrote {len(manifest)} ONNX models and manifest.csv to {args.out}")
    return 0


def _run_import(args):
    frame = import_timings(args.models, args.timings, args.out, device_name=args.device_name,
                           device_features=args.device_features, resume=args.resume)
    mine = frame[frame["device"] == args.device_name]
    print(f"{args.device_name}: {int((mine['status'] == 'ok').sum())} ok in {args.out}")
    return 0
