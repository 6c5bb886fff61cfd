"""The one place where skedge touches torch and skorch.

* :class:`MLP` - the multilayer perceptron every predictor and the optimizer use.
* :func:`seeded` - run torch code under a seed without touching the global RNG.
* :func:`fit_regression_net` - build and fit a skorch ``NeuralNetRegressor``
  around an :class:`MLP` (skorch owns the training loop; we do not subclass it).
"""

from __future__ import annotations

import contextlib
import threading
import time
import warnings

import numpy as np
import torch
from skorch import NeuralNetRegressor
from skorch.callbacks import Callback, EarlyStopping, LRScheduler
from skorch.dataset import Dataset, ValidSplit
from torch import nn

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "ArrayBatches",
    "as_tensor",
    "check_device",
    "fit_regression_net",
    "run_module",
    "seeded",
    "torch_threads",
]

_RNG_LOCK = threading.RLock()

ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
    "elu": nn.ELU,
}


class MLP(nn.Module):
    """Fully connected network: ``[Linear -> activation -> dropout] * len(hidden) -> Linear``.

    Parameters
    ----------
    n_in : int
        Input width.
    n_out : int
        Output width.
    hidden : tuple of int
        Width of each hidden layer.
    activation : str
        Key of :data:`ACTIVATIONS`.
    dropout : float
        Dropout probability after each hidden activation.
    """

    def __init__(self, n_in, n_out=1, hidden=(128, 128), activation="relu", dropout=0.0):
        super().__init__()
        layers, width = [], n_in
        for h in hidden:
            layers += [nn.Linear(width, h), ACTIVATIONS[activation]()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, n_out))
        self.net = nn.Sequential(*layers)
        self.n_out = n_out

    def forward(self, X):
        out = self.net(X)
        return out.squeeze(-1) if self.n_out == 1 else out


@contextlib.contextmanager
def seeded(seed):
    """Run the block with torch seeded by ``seed``; the global torch RNG is restored after.

    Examples
    --------
    >>> import torch
    >>> from skedge._torch import seeded
    >>> before = torch.random.get_rng_state()
    >>> with seeded(0):
    ...     a = torch.rand(2)
    >>> with seeded(0):
    ...     b = torch.rand(2)
    >>> bool((a == b).all()), bool((torch.random.get_rng_state() == before).all())
    (True, True)
    """
    # torch has one global RNG per process: two threads forking and seeding it at
    # once (GridSearchCV on dask's threaded workers) would draw from each other's
    # streams and restore each other's states. The lock makes seeded blocks atomic.
    with _RNG_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed) % (2**63))
        yield


@contextlib.contextmanager
def torch_threads(n):
    """Temporarily set torch's intra-op thread count (None leaves it alone)."""
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def check_device(device, *, what="device"):
    """Validate a torch device name; a CUDA device must be visible to torch.

    Parameters
    ----------
    device : str or torch.device
        ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    what : str
        The parameter's name, for the error message.

    Returns
    -------
    device : torch.device
        ``"cuda"`` becomes ``cuda:<current device>``.

    Raises
    ------
    ValueError
        For another device type, or CUDA where torch sees no GPU (a CPU build
        of torch, no driver, or ``CUDA_VISIBLE_DEVICES`` hiding it) or fewer GPUs.

    Examples
    --------
    >>> from skedge._torch import check_device
    >>> check_device("cpu")
    device(type='cpu')
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"{what} must be 'cpu', 'cuda' or 'cuda:N', got {device!r}.") from None
    if dev.type == "cpu":
        return torch.device("cpu")
    if dev.type != "cuda":
        raise ValueError(f"{what} must be 'cpu', 'cuda' or 'cuda:N', got {device!r}.")
    if not torch.cuda.is_available():
        raise ValueError(
            f"{what}={str(device)!r}, but torch sees no CUDA GPU (torch {torch.__version__}, "
            f"built with CUDA {torch.version.cuda or 'none: a CPU-only build'}); use 'cpu', or "
            "install a CUDA build of torch on a machine with an NVIDIA GPU and driver."
        )
    index = torch.cuda.current_device() if dev.index is None else dev.index
    if index >= torch.cuda.device_count():
        raise ValueError(
            f"{what}={str(device)!r}, but torch sees only {torch.cuda.device_count()} GPU(s)."
        )
    return torch.device("cuda", index)


def run_module(module, X):
    """``module(X)`` computed in ``X``'s dtype, the module's own weights left as they are.

    A float64 ``X`` runs the (float32) module with float64 copies of its
    parameters: predictions then do not depend on the batch a row is in (float32
    matrix products round differently for different batch sizes, by ~1e-7).

    Examples
    --------
    >>> import torch
    >>> from skedge._torch import MLP, run_module
    >>> net = MLP(3, 1, (4,))
    >>> run_module(net, torch.zeros(2, 3, dtype=torch.float64)).dtype
    torch.float64
    >>> next(net.parameters()).dtype
    torch.float32
    """
    params = dict(module.named_parameters())
    if not params or next(iter(params.values())).dtype == X.dtype:
        return module(X)
    state = {**params, **dict(module.named_buffers())}
    state = {k: v.to(X.dtype) for k, v in state.items()}
    return torch.func.functional_call(module, state, (X,))


def as_tensor(X, dtype=torch.float32):
    """A float32 tensor view of an array (no copy when already float32)."""
    if isinstance(X, torch.Tensor):
        return X.to(dtype)
    return torch.as_tensor(np.ascontiguousarray(X), dtype=dtype)


class ArrayBatches:
    """Batches of a skorch dataset cut from its arrays, in (optionally shuffled) slices.

    skorch's default iterator is a torch ``DataLoader`` that fetches and collates
    the rows of every batch one at a time; on the hundreds of thousands of short
    rows a latency predictor trains on, that doubles the time of a CPU epoch
    (1 torch thread, 200,000 rows of 40 features, 128x3 MLP, batches of 1,024:
    1.8 s per epoch through the ``DataLoader``, 0.9 s through this). This
    iterator indexes the arrays once per batch instead. It takes the arguments
    skorch passes to ``iterator_train`` / ``iterator_valid``; a dataset that is not
    a skorch ``Dataset`` of arrays (or a ``Subset`` of one) falls back to the
    default ``DataLoader``.

    Examples
    --------
    >>> import numpy as np
    >>> from skorch.dataset import Dataset
    >>> from skedge._torch import ArrayBatches
    >>> ds = Dataset(np.arange(10, dtype="float32").reshape(5, 2), np.zeros(5, "float32"))
    >>> [tuple(Xb.shape) for Xb, yb in ArrayBatches(ds, batch_size=2)]
    [(2, 2), (2, 2), (1, 2)]
    """

    def __init__(self, dataset, batch_size=128, shuffle=False, generator=None, **kwargs):
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.generator = generator
        self.kwargs = kwargs
        self._arrays = _dataset_arrays(dataset)

    def __len__(self):
        return (len(self.dataset) + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        if self._arrays is None:
            loader = torch.utils.data.DataLoader(
                self.dataset, batch_size=self.batch_size, shuffle=self.shuffle,
                generator=self.generator, **self.kwargs,
            )
            yield from loader
            return
        X, y, rows = self._arrays
        if self.shuffle:
            rows = rows[torch.randperm(len(rows), generator=self.generator).numpy()]
        for start in range(0, len(rows), self.batch_size):
            idx = rows[start : start + self.batch_size]
            yb = None if y is None else torch.as_tensor(y[idx])
            yield torch.as_tensor(X[idx]), yb


def _dataset_arrays(dataset):
    """``(X, y, row indices)`` behind a skorch ``Dataset`` (or ``Subset`` of one), else None."""
    rows = None
    if isinstance(dataset, torch.utils.data.Subset):
        rows = np.asarray(dataset.indices)
        dataset = dataset.dataset
    if type(dataset) is not Dataset or not isinstance(dataset.X, (np.ndarray, torch.Tensor)):
        return None
    if dataset.y is not None and not isinstance(dataset.y, (np.ndarray, torch.Tensor)):
        return None
    if rows is None:
        rows = np.arange(len(dataset))
    return dataset.X, dataset.y, rows


class EpochProgress(Callback):
    """skorch callback: a progress line every tenth of the epochs, for ``verbose=1``.

    Parameters
    ----------
    prefix : str
        Start of each line (which model, which member).
    max_epochs : int
    """

    def __init__(self, prefix, max_epochs):
        self.prefix, self.max_epochs = prefix, max_epochs

    def on_train_begin(self, net, **kwargs):
        self.start_ = time.perf_counter()

    def on_epoch_end(self, net, **kwargs):
        epoch = len(net.history)
        if epoch % max(1, self.max_epochs // 10) and epoch != self.max_epochs:
            return
        loss = net.history[-1].get("train_loss", float("nan"))
        print(f"{self.prefix} epoch {epoch}/{self.max_epochs}: train loss {loss:.4f} "
              f"({time.perf_counter() - self.start_:.1f} s)", flush=True)


def fit_regression_net(
    X,
    y,
    *,
    hidden,
    activation,
    dropout,
    lr,
    max_epochs,
    batch_size,
    weight_decay,
    early_stopping,
    validation_fraction,
    patience,
    seed,
    verbose,
    device="cpu",
    progress=None,
):
    """Fit one skorch ``NeuralNetRegressor`` around an :class:`MLP` and return it.

    ``progress``: a prefix for :class:`EpochProgress` lines (None: no lines).

    ``X`` and ``y`` are already scaled float32 arrays. The net trains with MSE
    and AdamW; with ``early_stopping`` a random ``validation_fraction`` of the
    rows is held out and training stops after ``patience`` epochs without
    improvement of the validation loss, keeping the best weights. ``device``
    (``"cpu"`` or ``"cuda:N"``, already checked) is where the net trains; skorch
    moves each batch there.
    """
    callbacks = [
        ("cosine", LRScheduler(policy="CosineAnnealingLR", T_max=max(1, max_epochs))),
    ]
    if early_stopping:
        callbacks.append(
            ("early_stopping", EarlyStopping(patience=patience, load_best=True))
        )
    if progress is not None:
        callbacks.append(("progress", EpochProgress(progress, max_epochs)))
    net = NeuralNetRegressor(
        module=MLP,
        module__n_in=X.shape[1],
        module__n_out=1 if y.ndim == 1 else y.shape[1],
        module__hidden=tuple(hidden),
        module__activation=activation,
        module__dropout=dropout,
        criterion=nn.MSELoss,
        optimizer=torch.optim.AdamW,
        optimizer__weight_decay=weight_decay,
        lr=lr,
        max_epochs=max_epochs,
        batch_size=min(batch_size, len(X)),
        iterator_train=ArrayBatches,
        iterator_valid=ArrayBatches,
        iterator_train__shuffle=True,
        # Shuffling draws from a generator of its own, so training without dropout
        # needs no global RNG and concurrent fits stay reproducible (see below).
        iterator_train__generator=torch.Generator().manual_seed(int(seed) % (2**63)),
        train_split=ValidSplit(validation_fraction, random_state=seed % (2**32))
        if early_stopping
        else None,
        callbacks=callbacks,
        device=device,
        verbose=verbose,
    )
    with warnings.catch_warnings():
        # A last batch of one row makes BatchNorm-free MSE fine; skorch warns on
        # nothing else we can act on here.
        warnings.simplefilter("ignore", category=UserWarning)
        # The initial weights come from the global RNG: seed it (atomically) for
        # that only. Dropout draws from it during training too, so then the whole
        # fit holds the seeded block (and fits in threads run one at a time).
        with seeded(seed):
            net.initialize()
        with seeded(seed + 1) if dropout else contextlib.nullcontext():
            net.partial_fit(X, y)
    # The generator and the progress lines are only for this fit; kept, they would
    # go into every pickle.
    del net.iterator_train__generator
    net.callbacks = [c for c in net.callbacks if c[0] != "progress"]
    net.callbacks_ = [c for c in net.callbacks_ if c[0] != "progress"]
    net.module_.eval()
    # skorch's LRScheduler keeps the optimizer (and through it the weights) outside
    # the state skorch maps to the CPU on unpickling, so a pickle of a CUDA-trained
    # net would not load on a CPU-only machine (skorch issue #1096) and every pickle
    # held the weights twice. The scheduler is rebuilt at the next on_train_begin.
    for _, callback in net.callbacks_:
        if hasattr(callback, "lr_scheduler_"):
            callback.lr_scheduler_ = None
    return net
