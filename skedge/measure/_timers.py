"""Timers: PyTorch on the CPU or a CUDA GPU (optionally as a CUDA graph), and onnxruntime.

Every backend is reduced to a zero-argument ``run`` callable (one inference of
one fixed input batch) and timed by :class:`torch.utils.benchmark.Timer`,
which synchronizes the accelerator around each timed run, pauses the garbage
collector and sets the thread count.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch.utils import benchmark

from .._torch import check_device, torch_threads
from ._optional import optional_import

__all__ = ["time_model", "time_onnx_model", "time_runs"]


def _positive(**kwargs):
    out = []
    for name, v in kwargs.items():
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}.")
        out.append(int(v))
    return tuple(out)


def time_runs(run, *, warmup=5, repeats=20, threads=None):
    """Time ``repeats`` calls of ``run`` after ``warmup`` untimed ones.

    Each timed call is one :meth:`torch.utils.benchmark.Timer.timeit` of one
    run, which first makes two untimed runs of its own and synchronizes the
    accelerator (if any) before and after the timed one: the time is one
    inference's latency, not a throughput of overlapping launches.

    Parameters
    ----------
    run : callable
        Zero-argument callable, one inference.
    warmup : int, default=5
    repeats : int, default=20
    threads : int, default=None
        Torch intra-op threads while timing; None keeps the current count.

    Returns
    -------
    times_ms : ndarray of shape (repeats,)

    Examples
    --------
    >>> from skedge.measure import time_runs
    >>> time_runs(lambda: sum(range(100)), warmup=0, repeats=3).shape
    (3,)
    """
    (repeats,) = _positive(repeats=repeats)
    if isinstance(warmup, bool) or not isinstance(warmup, (int, np.integer)) or warmup < 0:
        raise ValueError(f"warmup must be a non-negative integer, got {warmup!r}.")
    n_threads = torch.get_num_threads() if threads is None else _positive(threads=threads)[0]
    with torch_threads(n_threads):
        for _ in range(int(warmup)):
            run()
        timer = benchmark.Timer(stmt="run()", globals={"run": run}, num_threads=n_threads)
        return np.array([timer.timeit(number=1).raw_times[0] * 1e3 for _ in range(repeats)])


def _input(shape, batch_size, random_state, device="cpu"):
    generator = torch.Generator().manual_seed(int(random_state))
    return torch.randn(batch_size, *shape, generator=generator).to(device)


def _cuda_graph(model, x):
    """Capture one inference as a CUDA graph; replaying it skips the kernel launches."""
    stream = torch.cuda.Stream(device=x.device)
    stream.wait_stream(torch.cuda.current_stream(x.device))
    with torch.cuda.stream(stream):
        for _ in range(3):  # warm-up on a side stream, as the CUDA-graph docs ask
            model(x)
    torch.cuda.current_stream(x.device).wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        model(x)
    return graph.replay


@contextlib.contextmanager
def torch_runner(model, *, batch_size=1, device="cpu", cuda_graphs=False, input_shape=None,
                 random_state=0):
    """Yield ``(run, sync)`` for one model on one device, under inference mode."""
    dev = check_device(device, what="device")
    if cuda_graphs and dev.type != "cuda":
        raise ValueError("cuda_graphs=True needs a CUDA device.")
    shape = tuple(input_shape or model.input_shape)
    model.eval()
    model = model.to(dev)
    x = _input(shape, batch_size, random_state, dev)
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    # The timer synchronizes the current device: make it this one.
    current = torch.cuda.device(dev) if dev.type == "cuda" else contextlib.nullcontext()
    with current, torch.inference_mode():
        run = _cuda_graph(model, x) if cuda_graphs else (lambda: model(x))
        yield run, sync


def time_model(model, *, batch_size=1, warmup=5, repeats=20, threads=None, input_shape=None,
               random_state=0, device="cpu", cuda_graphs=False):
    """Time the inference of one PyTorch model on this CPU or a CUDA GPU.

    Parameters
    ----------
    model : torch.nn.Module
        The network, e.g. from :func:`skedge.models.build_model`; put in eval
        mode (and moved to ``device``).
    batch_size : int, default=1
        Images per inference.
    warmup : int, default=5
        Untimed runs first (allocator, caches, lazy initialisation).
    repeats : int, default=20
        Timed runs (see :func:`time_runs`).
    threads : int, default=None
        ``torch.set_num_threads`` for the duration of the call (restored
        afterwards); None keeps the current setting.
    input_shape : tuple of int, default=None
        ``(C, H, W)`` of one image; default ``model.input_shape``.
    random_state : int, default=0
        Seed of the random input batch.
    device : str, default="cpu"
        ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; a clear error where torch sees
        no such GPU.
    cuda_graphs : bool, default=False
        Capture the inference as a CUDA graph and time its replay (removes the
        CPU launch overhead that dominates small batches on a GPU).

    Returns
    -------
    times_ms : ndarray of shape (repeats,)
        Milliseconds of each timed run.

    Examples
    --------
    >>> from skedge.measure import time_model
    >>> from skedge.models import build_model
    >>> times = time_model(build_model("nb201", [1] * 6), warmup=1, repeats=3, threads=1)
    >>> times.shape, bool((times > 0).all())
    ((3,), True)
    """
    (batch_size,) = _positive(batch_size=batch_size)
    with torch_runner(model, batch_size=batch_size, device=device, cuda_graphs=cuda_graphs,
                      input_shape=input_shape, random_state=random_state) as (run, _):
        return time_runs(run, warmup=warmup, repeats=repeats, threads=threads)


def onnx_session(path, *, threads=1):
    """An onnxruntime CPU session of one ONNX file with ``threads`` intra-op threads."""
    # onnxruntime is optional (the "profile" extra): only this backend needs it.
    ort = optional_import("onnxruntime", "timing ONNX models (--backend onnxruntime)")
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_runner(path, *, threads=1, random_state=0):
    """``(run, batch_size)`` for one ONNX file; the input shape must be static."""
    session = onnx_session(path, threads=threads)
    (inp,) = session.get_inputs()
    if not all(isinstance(d, int) for d in inp.shape):
        raise ValueError(f"{path}: input shape {inp.shape} is not static; export with "
                         "skedge export, which fixes the batch size.")
    x = _input(tuple(inp.shape[1:]), inp.shape[0], random_state).numpy()
    feeds = {inp.name: x}
    return (lambda: session.run(None, feeds)), inp.shape[0]


def time_onnx_model(path, *, warmup=5, repeats=20, threads=1, random_state=0):
    """Time one ONNX model with onnxruntime on this CPU.

    Parameters
    ----------
    path : str or path-like
        An ``.onnx`` file with one static-shape input (as :func:`export_onnx`
        writes; the batch size is the file's).
    warmup, repeats : int, default=5, 20
    threads : int, default=1
        onnxruntime intra-op threads.
    random_state : int, default=0
        Seed of the random input batch.

    Returns
    -------
    times_ms : ndarray of shape (repeats,)

    Examples
    --------
    >>> import os, tempfile
    >>> from skedge.measure import export_onnx, time_onnx_model
    >>> out = tempfile.mkdtemp()
    >>> manifest = export_onnx("nb201", out, designs=[[1] * 6])
    >>> time_onnx_model(os.path.join(out, manifest["file"][0]), repeats=3).shape
    (3,)
    """
    (threads,) = _positive(threads=threads)
    run, _ = onnx_runner(path, threads=threads, random_state=random_state)
    return time_runs(run, warmup=warmup, repeats=repeats, threads=threads)
