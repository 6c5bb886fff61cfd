"""Performance predictors: :class:`AccuracyRegressor` and :class:`DevicePerformanceRegressor`.

Both are thin scikit-learn regressors over one shared core
(:class:`_MLPRegressorBase`): inputs are standardized, the target optionally
log-transformed and standardized, and an ensemble of skorch-trained MLPs
(:func:`skedge._torch.fit_regression_net`) is fitted with MSE. What a design or
a device *is* (one-hot, embeddings, signatures) is the job of the transformers
in :mod:`skedge.preprocessing`; :func:`make_performance_pipeline` and
:func:`make_accuracy_pipeline` assemble the standard pipelines.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._checks import check_positive_target, warn_far_outside
from ._torch import (
    ACTIVATIONS,
    as_tensor,
    check_device,
    fit_regression_net,
    run_module,
    torch_threads,
)

__all__ = ["AccuracyRegressor", "DevicePerformanceRegressor"]


def _check_hidden(hidden):
    try:
        sizes = tuple(int(h) for h in hidden)
    except TypeError:
        sizes = (int(hidden),)
    if any(h < 1 for h in sizes) or any(h != float(g) for h, g in zip(sizes, np.ravel(hidden))):
        raise ValueError(
            f"hidden_layer_sizes must be positive integers, got {hidden!r}."
        )
    return sizes


def _weights_device(net):
    return next(net.module_.parameters()).device


class _MLPRegressorBase(RegressorMixin, BaseEstimator):
    """Shared core: scaled inputs, transformed target, an ensemble of skorch MLPs."""

    _parameter_constraints = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "target_transform": [StrOptions({"auto", "log", "log-error", "none"}), None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
        "device": [str],
    }

    def __init__(
        self,
        *,
        hidden_layer_sizes=(256, 256, 256),
        activation="relu",
        dropout=0.0,
        learning_rate=1e-3,
        max_epochs=60,
        batch_size=256,
        weight_decay=1e-4,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=8,
        n_estimators=1,
        target_transform="auto",
        random_state=None,
        verbose=0,
        n_threads=None,
        device="cpu",
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.n_estimators = n_estimators
        self.target_transform = target_transform
        self.random_state = random_state
        self.verbose = verbose
        self.n_threads = n_threads
        self.device = device

    # ------------------------------------------------------------------ fit
    def _resolve_target_transform(self, y):
        """The transform to fit and ``y`` ready for it (a few values <= 0 floored, warned)."""
        mode = self.target_transform or "none"
        if mode == "auto":
            y, _ = check_positive_target(y)
            return ("log" if np.all(y > 0) else "none"), y
        if mode == "log" and not np.all(y > 0):
            raise ValueError(
                f"target_transform='log' needs positive targets; y has minimum {y.min():.4g}. "
                "Floor the measurements (e.g. at a small fraction of the median) or use "
                "target_transform='none'."
            )
        if mode == "log-error" and not np.all(y < 100):
            raise ValueError(
                f"target_transform='log-error' models log(100 - y), an accuracy in percent "
                f"below 100; y has maximum {y.max():.4g}. Give accuracies in percent or use "
                "target_transform='none'."
            )
        return mode, y

    def _forward_target(self, y):
        if self.target_transform_ == "log":
            return np.log(y)
        # Increasing in y, so the network's output still rises with accuracy.
        return -np.log(100.0 - y) if self.target_transform_ == "log-error" else y

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit the ensemble of MLPs.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Numeric features (see :mod:`skedge.preprocessing` for design and
            device encoders).
        y : array-like of shape (n_samples,)
            Target (accuracy in %, latency in ms, energy in mJ, ...).

        Returns
        -------
        self : object

        Raises
        ------
        ValueError
            With ``target_transform="auto"`` or ``"log"``, every target is 0.

        Warns
        -----
        UserWarning
            ``target_transform="auto"`` and a few targets (at most 5 %) are
            <= 0: they are floored at the smallest positive target and the log
            target is kept (see :func:`skedge._checks.check_positive_target`).
        """
        X, y = validate_data(self, X, y, y_numeric=True, dtype=np.float64)
        hidden = _check_hidden(self.hidden_layer_sizes)
        device = str(check_device(self.device))
        self.target_transform_, y = self._resolve_target_transform(y)
        t = self._forward_target(y)
        self.x_min_, self.x_max_ = X.min(axis=0), X.max(axis=0)
        self.x_mean_ = X.mean(axis=0)
        scale = X.std(axis=0)
        self.x_scale_ = np.where(scale > 1e-12, scale, 1.0)
        self.y_mean_ = float(t.mean())
        self.y_scale_ = float(t.std()) if t.std() > 1e-12 else 1.0
        Xs = ((X - self.x_mean_) / self.x_scale_).astype(np.float32)
        ts = ((t - self.y_mean_) / self.y_scale_).astype(np.float32)
        rng = check_random_state(self.random_state)
        seeds = rng.randint(np.iinfo(np.int32).max, size=self.n_estimators)
        with torch_threads(self.n_threads):
            self.estimators_ = [self._fit_member(i, int(seed), Xs, ts, hidden, device)
                                for i, seed in enumerate(seeds)]
        return self

    def _fit_member(self, i, seed, Xs, ts, hidden, device="cpu"):
        if self.verbose:
            print(f"[{type(self).__name__}] member {i + 1}/{self.n_estimators}: "
                  f"{len(Xs)} rows, {self.max_epochs} epochs")
        return fit_regression_net(
            Xs, ts,
            hidden=hidden,
            activation=self.activation,
            dropout=self.dropout,
            lr=self.learning_rate,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            weight_decay=self.weight_decay,
            early_stopping=self.early_stopping,
            validation_fraction=self.validation_fraction,
            patience=self.n_iter_no_change,
            seed=seed,
            verbose=max(0, int(self.verbose) - 1),
            device=device,
            progress=(f"[{type(self).__name__}] member {i + 1}/{self.n_estimators}"
                      if int(self.verbose) == 1 else None),
        )

    # -------------------------------------------------------------- predict
    def _member_outputs(self, Z):
        """Transformed-scale outputs of each member for a raw-feature tensor ``Z``.

        The members compute in ``Z``'s dtype: float32 for the optimizer's torch
        path, float64 for :meth:`predict` (see :func:`~skedge._torch.run_module`).
        """
        mean = torch.as_tensor(self.x_mean_, dtype=Z.dtype)
        scale = torch.as_tensor(self.x_scale_, dtype=Z.dtype)
        Zs = (Z - mean) / scale
        # Each member runs where its weights are (a GPU-fitted model unpickled on a
        # CPU-only machine runs on the CPU); the rows go there and back in batches.
        outs = torch.stack([run_module(net.module_, Zs.to(_weights_device(net))).to(Z.device)
                            for net in self.estimators_])
        return self._unscale(outs)

    def _unscale(self, outs):
        """Members' standardized outputs back on the transformed target scale."""
        return outs * self.y_scale_ + self.y_mean_

    def _inverse(self, t):
        if self.target_transform_ == "log":
            return torch.exp(t)
        return 100.0 - torch.exp(-t) if self.target_transform_ == "log-error" else t

    def torch_forward(self, Z):
        """Differentiable prediction for a float tensor of raw features.

        The member networks are used as they are (their weights are not
        changed and receive no optimizer); gradients flow to ``Z``. Members are
        averaged on the transformed scale (a geometric mean for log targets).

        Parameters
        ----------
        Z : torch.Tensor of shape (n_samples, n_features_in_)

        Returns
        -------
        pred : torch.Tensor of shape (n_samples,)
        """
        check_is_fitted(self)
        return self._inverse(self._member_outputs(Z).mean(dim=0))

    def predict(self, X, return_std=False):
        """Predict the target; optionally the spread of the ensemble.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        return_std : bool, default=False
            Also return the standard deviation of the members' predictions
            (in target units; zero for a single member).

        Returns
        -------
        y_pred : ndarray of float64, shape (n_samples,)
        y_std : ndarray of float64, shape (n_samples,)
            Only with ``return_std=True``.

        Warns
        -----
        OutOfRangeWarning
            A feature lies beyond the range seen in ``fit`` by more than that
            range's width (or 1), e.g. design index 99 where 0..4 were seen:
            the prediction is an extrapolation.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        self._warn_out_of_range(X)
        preds, outs = [], []
        with torch.no_grad(), torch_threads(self.n_threads):
            for start in range(0, len(X), 65536):
                # float64: a row's prediction must not depend on the rows it is batched
                # with (float32 matrix products round differently per batch size).
                o = self._member_outputs(as_tensor(X[start:start + 65536], torch.float64))
                outs.append(self._inverse(o).double().numpy())
                preds.append(self._inverse(o.mean(dim=0)).double().numpy())
        y = np.concatenate(preds) if preds else np.zeros(0)
        if not return_std:
            return y
        members = np.concatenate(outs, axis=1) if outs else np.zeros((len(self.estimators_), 0))
        return y, members.std(axis=0)

    def _warn_out_of_range(self, X):
        """Warn when a feature lies beyond the fitted range by more than its span (or 1)."""
        low, high = getattr(self, "x_min_", None), getattr(self, "x_max_", None)
        if low is None or len(X) == 0:  # fitted before skedge kept the range
            return
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            names = [f"x{i}" for i in range(X.shape[1])]
        warn_far_outside(X, low, high, np.maximum(high - low, 1.0), names,
                         what=f"{type(self).__name__}: feature", stacklevel=4)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.single_output = True
        tags.target_tags.multi_output = False
        return tags


class AccuracyRegressor(_MLPRegressorBase):
    """MLP predictor of a design's accuracy (device independent).

    Trained with MSE on the standardized log error rate of the accuracy (see
    ``target_transform``). Use it on encoded designs, most simply through
    :func:`make_accuracy_pipeline`, which one-hot encodes the design indices
    with the categories of the space.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(128, 128, 128)
        Width of each hidden layer.
    activation : {"relu", "gelu", "tanh", "silu", "elu"}, default="relu"
    dropout : float, default=0.0
        Dropout after each hidden activation.
    learning_rate : float, default=1e-3
        AdamW learning rate (cosine-annealed over the epochs).
    max_epochs : int, default=200
    batch_size : int, default=128
        Accuracy labels are few (each is a trained network): small batches
        and many epochs give the networks enough gradient steps, and three
        networks (``n_estimators``) average out their noise. The
        documentation's benchmark page compares these defaults with a
        smaller budget on NAS-Bench-201.
    weight_decay : float, default=1e-4
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows and stop after
        ``n_iter_no_change`` epochs without improvement (best weights kept).
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=8
    n_estimators : int, default=3
        Ensemble size; ``predict(X, return_std=True)`` reports the spread.
    target_transform : {"auto", "log-error", "none", "log"}, default="auto"
        ``"log-error"`` fits ``-log(100 - y)``, the log error rate of an
        accuracy in percent; ``"auto"`` does so when every target lies in
        [0, 100), else fits ``y`` as it is (``"none"``). On the log error
        rate, 94.0 % against 94.4 % counts as much as 40 % against 60 % does
        on a linear scale: the few bad designs no longer dominate the squared
        error, and the ranking of the best designs, which the optimizer
        needs, improves (NB201, 3,000 training cells: Kendall tau within the
        top 10 % 0.40 to 0.53; see the documentation's benchmark page).
        Predictions stay below 100. ``"log"`` fits log(y).
    random_state : int, RandomState instance or None, default=None
        Seeds the members; the global torch RNG is left untouched.
    verbose : int, default=0
        1 prints a line per ensemble member and progress lines (every tenth
        of the epochs, with the training loss and elapsed time); 2 prints
        skorch's table of every epoch instead.
    n_threads : int or None, default=None
        Torch intra-op threads while fitting and predicting. torch's thread
        count is process-wide: it is set for the call and restored after.
        None keeps torch's setting.
    device : str, default="cpu"
        Where the members train: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``
        (checked at fit: an error where torch sees no GPU). skorch moves each
        batch there; ``predict`` runs where the weights are, so a model fitted
        on a GPU and unpickled on a CPU-only machine predicts on the CPU.

    Attributes
    ----------
    estimators_ : list of skorch.NeuralNetRegressor
        The fitted members.
    n_features_in_ : int
    target_transform_ : str
        The transform actually used.
    x_min_, x_max_ : ndarray of shape (n_features,)
        Range of each feature in ``fit`` (``predict`` warns far outside it).

    Examples
    --------
    >>> import numpy as np
    >>> from skedge import AccuracyRegressor
    >>> rng = np.random.RandomState(0)
    >>> X = rng.rand(200, 4); y = 70 + 10 * X[:, 0]
    >>> reg = AccuracyRegressor(hidden_layer_sizes=(32,), max_epochs=200, random_state=0)
    >>> reg.fit(X, y).score(X, y) > 0.9
    True
    """

    def __init__(
        self,
        *,
        hidden_layer_sizes=(128, 128, 128),
        activation="relu",
        dropout=0.0,
        learning_rate=1e-3,
        max_epochs=200,
        batch_size=128,
        weight_decay=1e-4,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=8,
        n_estimators=3,
        target_transform="auto",
        random_state=None,
        verbose=0,
        n_threads=None,
        device="cpu",
    ):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, dropout=dropout,
            learning_rate=learning_rate, max_epochs=max_epochs, batch_size=batch_size,
            weight_decay=weight_decay, early_stopping=early_stopping,
            validation_fraction=validation_fraction, n_iter_no_change=n_iter_no_change,
            n_estimators=n_estimators, target_transform=target_transform,
            random_state=random_state, verbose=verbose, n_threads=n_threads, device=device,
        )

    def _resolve_target_transform(self, y):
        if self.target_transform == "auto":
            inside = len(y) and y.min() >= 0 and y.max() < 100
            return ("log-error" if inside else "none"), y
        return super()._resolve_target_transform(y)


class DevicePerformanceRegressor(_MLPRegressorBase):
    """MLP predictor of latency or energy from (design, device) features.

    One model serves every device, including devices it never saw: the device
    enters only through its features (spec sheet, few-shot signature or a
    learned embedding; see :func:`make_performance_pipeline`).

    By default (``target_transform="auto"``) a positive target is modelled on
    the log scale: the MSE is taken on log-latency, so errors are relative
    (a 1 ms error matters on a 5 ms GPU, not on a 500 ms phone) and the
    ensemble mean is a geometric mean.

    Parameters
    ----------
    hidden_layer_sizes, activation, dropout, learning_rate, max_epochs, \
batch_size, weight_decay, early_stopping, validation_fraction, \
n_iter_no_change, n_estimators, random_state, verbose, n_threads, device
        As in :class:`AccuracyRegressor`.
    target_transform : {"auto", "log", "none"}, default="auto"
        ``"auto"``: log when every target is positive.

    Attributes
    ----------
    estimators_ : list of skorch.NeuralNetRegressor
    n_features_in_ : int
    target_transform_ : str

    Examples
    --------
    >>> import numpy as np
    >>> from skedge import DevicePerformanceRegressor
    >>> rng = np.random.RandomState(0)
    >>> X = rng.rand(300, 3); y = np.exp(X @ [1.0, 2.0, -1.0])
    >>> reg = DevicePerformanceRegressor(hidden_layer_sizes=(32,), max_epochs=40,
    ...                                  random_state=0).fit(X, y)
    >>> reg.target_transform_
    'log'
    >>> y_pred, y_std = reg.predict(X[:2], return_std=True)
    >>> y_pred.dtype.name, y_std.shape
    ('float64', (2,))
    """
