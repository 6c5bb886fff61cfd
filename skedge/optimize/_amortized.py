"""The amortized design optimizer: one network maps (device features, λ) to a design.

A search costs thousands of predictor calls per device and trade-off;
:class:`AmortizedDesignOptimizer` pays once, training ``g(d, λ) -> design`` on the
predicted objective (:class:`~skedge.optimize.Objective`) over a distribution of
devices and weights, so a design for a new device is one forward pass.
"""

from __future__ import annotations

import time
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._torch import ACTIVATIONS, as_tensor, check_device, torch_threads
from ..predictors import _check_hidden
from ..spaces import DesignSpace
from ._distill import best_of, distill_student, finetune_networks, say
from ._fitted import build_objective
from ._relaxation import RELAXATIONS, blocks_of
from ._rows import LAMBDA_RANGE, OptimizerMixin, check_lambda_range, check_lambdas
from ._training import broadcast_encoding, network_input, train_network, training_pool

__all__ = ["AmortizedDesignOptimizer"]

_CHUNK = 65536


class AmortizedDesignOptimizer(OptimizerMixin, BaseEstimator):
    """Network that maps (device features, objective weights λ) to a design.

    ``fit`` trains one or more MLPs *without labels*: for minibatches of
    optimizer rows ``(d, λ)`` the network proposes a (relaxed) design ``P``
    and its loss is the predicted objective ``f(P; d, λ)`` of
    :class:`~skedge.optimize.Objective`, differentiated through frozen copies
    of the predictors (their weights never change). No optimal designs are
    needed. Training costs as much as thousands of per-row searches (see
    Notes); afterwards :meth:`predict` answers any device and λ with one
    forward pass, which pays off over the many (device, λ) rows of a fleet.

    Rows of ``X`` are ``[device columns..., λ_lat]`` (``[..., λ_lat, λ_en]``
    with an energy predictor): the device columns are exactly those the
    latency predictor takes after the design columns. The training rows are
    the rows of ``X`` plus ``n_augment`` rows drawn around the devices of ``X``
    by :func:`~skedge.optimize.sample_optimizer_inputs` (jittered devices,
    same-kind mixtures, λ log-uniform in ``lambda_range`` and redrawn at every
    step), so a few tens of known devices suffice.

    The network sees the device columns as the latency (and energy)
    predictor's own fitted encoders produce them, plus a normalized ``log λ``;
    it outputs one logit per option of each choice.

    Parameters
    ----------
    space : DesignSpace or str
    accuracy, latency : fitted estimator
        Predictors as for :class:`~skedge.optimize.Objective`, never refitted.
        As parameters of any scikit-learn estimator, :func:`sklearn.base.clone`
        clones (unfits) them; wrap them in :class:`sklearn.frozen.FrozenEstimator`
        to clone the optimizer (e.g. in a grid search) with them fitted.
    energy : fitted estimator, default=None
    hidden_layer_sizes : tuple of int, default=(256, 256)
    activation : {"relu", "gelu", "tanh", "silu", "elu"}, default="relu"
    relaxation : {"gumbel-softmax", "gumbel-st", "st", "softmax", "reinforce"}, \
default="gumbel-softmax"
        How the categorical choices are made trainable. ``"gumbel-softmax"``:
        the predictors see the per-choice softmax of ``(logits + Gumbel
        noise) / τ``, a random soft design; ``"softmax"``: the same without
        noise; ``"st"``: the predictors see the hard argmax design and gradients
        pass through the softmax (straight-through); ``"gumbel-st"``:
        straight-through on Gumbel-perturbed logits (a sampled hard design);
        ``"reinforce"``: no gradient through the predictors, the score-function
        estimator over ``n_samples`` sampled hard designs per row.
    tau_start, tau_end : float, default=1.0, 0.1
        Softmax temperature, annealed geometrically over the steps.
    n_steps : int, default=2000
        Gradient steps per network (and per student); which basin a network
        ends in varies with the seed, hence ``n_estimators`` and ``distill``.
    batch_size : int, default=512
    learning_rate : float, default=2e-3
        Adam learning rate, cosine-annealed to a tenth over the steps.
    n_samples : int, default=8
        ``"reinforce"`` only: designs sampled per row and step.
    entropy_weight : float, default=0.01
        ``"reinforce"`` only: weight of the policy-entropy bonus.
    n_estimators : int, default=4
        Networks trained on the objective from different seeds. With
        ``distill`` they are teachers: they label rows at fit time and are then
        dropped. Without it :meth:`predict` keeps, per row, the design of the
        network with the best predicted objective (costs predictor calls).
    refine : int, default=0
        Rounds of greedy local search after the network(s) in :meth:`predict`:
        each round evaluates every single-choice change of the current design
        (in one batch) and moves to the best one if it improves the predicted
        objective. Costs ~ (options - 1) x choices predictor calls per row.
    distill : int, default=16384
        Rows ``(device, λ)`` (drawn like the augmented rows) on which the
        per-row best of the ``n_estimators`` networks, refined by
        ``distill_refine`` greedy rounds, teaches a student network by
        cross-entropy (``n_steps`` steps; see ``distill_rounds``). The student
        replaces the networks: :meth:`predict` gets the robustness of the
        ensemble plus search for one forward pass. 0 keeps the networks.
    distill_refine : int, default=8
        Greedy rounds on the designs that label the distillation rows: the
        teachers', then in each further round the student's.
    distill_rounds : int, default=2
        Students trained in turn (expert iteration): from the second on, the
        previous student's designs, refined by ``distill_refine`` greedy
        rounds, replace every label they beat. 1: the teachers' labels only.
    finetune : float, default=0.0
        Last, the network(s) that answer take ``round(finetune * n_steps)``
        steps of straight-through descent of the predicted objective (``"st"``: the
        predictors see the hard design :meth:`predict` would return), at
        ``learning_rate``, on the distillation rows (else the training rows)
        with λ redrawn. It improves the *predicted* objective (simulated OFA:
        median gap to evolution -0.5 % -> -3.2 %) but exploits the predictors'
        errors: on the simulator's true metrics, 0.010 worse; off by default.
    ordinal_shift : bool, default=True
        For *ordinal* choices (numeric options in monotonic order: kernel
        sizes, depths, resolutions, bit-widths) the network also outputs a
        shift ``a`` added to the option logits as ``a * t``, ``t`` the
        option's position in [-1, 1]: it moves probability along the option
        axis as a whole, where softmax gradients only reach options that
        already hold some. Nominal choices (NB201's operations) are unaffected.
    lambda_range : (float, float), default=LAMBDA_RANGE
        Range of the log-uniform λ of the augmented rows
        (:data:`~skedge.optimize.LAMBDA_RANGE`, (1e-3, 1)); also fixes the
        normalization of the network's ``log λ`` input. :meth:`predict` warns
        (``UserWarning``) about a non-zero λ outside it: the network never saw one.
    lambda_zero_fraction : float, default=0.1
        Fraction of augmented λ entries set to exactly 0.
    n_augment : int, default=4096
        Augmented device rows added to ``X`` (0 trains on ``X`` alone).
    device_jitter : float, default=0.1
        Log-normal jitter of the augmented devices (see
        :func:`~skedge.optimize.sample_optimizer_inputs`).
    n_threads : int or None, default=1
        Torch threads used by ``fit`` and ``predict`` (None: torch's current
        setting). One is about as fast as two for these small minibatches and
        leaves cores free for ``GridSearchCV(n_jobs=...)``.
    device : str, default="cpu"
        Where the optimizer networks train (``"cpu"``, ``"cuda"``,
        ``"cuda:N"``); the predictors run where their weights are. The
        networks return to the CPU, where ``predict`` runs.
    random_state : int, RandomState instance or None, default=None
        Seeds the augmentation and the networks; the global torch RNG is left untouched.
    verbose : int, default=0
        1 prints each stage of ``fit`` as it ends, with its wall time; 2 also
        the training objective every 200 steps.

    Attributes
    ----------
    networks_ : list of skedge._torch.MLP
        The trained networks (eval mode).
    loss_curves_ : list of ndarray
        Mean predicted objective of the training minibatches, every 10 steps
        (of the ``n_estimators`` networks trained on the objective).
    distill_agreement_ : float
        With ``distill``: share of the distillation rows on which the last
        student proposes exactly its labelled design.
    distill_curve_ : ndarray
        With ``distill``: the last student's cross-entropy, every 10 steps.
    distill_relabelled_ : list of float
        With ``distill``: per round after the first, the share of the
        distillation rows whose label the refined student replaced.
    finetune_curves_ : list of ndarray
        With ``finetune``: per answering network, the mean predicted objective
        of the fine-tuning minibatches' hard designs, every 10 steps.
    n_features_in_ : int
        Device columns plus λ columns.
    n_device_columns_ : int
    fit_time_ : float
        Seconds spent in :meth:`fit`.
    lambda_eps_, lambda_log_range_ : float, (float, float)
        The network's λ input is ``log(λ + lambda_eps_)`` mapped from
        ``lambda_log_range_`` to [-1, 1] (λ = 0 is allowed).
    objective_ : Objective
        The predicted objective of the fitted predictors (rebuilt after unpickling).
    device_encoding_range_ : tuple of (dict or None)
        Per predictor (latency, energy), the per-column (min, max) of the device
        encodings trained on; an adapted device is kept inside it.

    See Also
    --------
    skedge.optimize.SearchBaseline : per-row search on the same objective.
    skedge.optimize.sample_optimizer_inputs : training rows around known devices.

    Notes
    -----
    The defaults were chosen from measurements on NB201 and OFA with
    bit-widths against exhaustive search and evolution (``docs/benchmarks.rst``,
    "Amortized optimizer"). The predicted objective is very multimodal and the
    seed decides a network's basin: ``n_estimators`` and ``refine`` help but
    cost predictor calls at every :meth:`predict`; ``distill`` pays them once,
    at fit time (labelling 16,384 rows twice takes most of a default fit).

    Examples
    --------
    >>> import numpy as np
    >>> from skedge.spaces import NB201Space
    >>> from skedge.pipelines import make_accuracy_pipeline, make_performance_pipeline
    >>> from skedge.optimize import AmortizedDesignOptimizer, sample_optimizer_inputs
    >>> s = NB201Space(); X = s.sample(300, 0)
    >>> acc = make_accuracy_pipeline(s, hidden_layer_sizes=(16,), max_epochs=3,
    ...                              random_state=0).fit(X, 80 + (X == 3).sum(1))
    >>> rng = np.random.RandomState(0); D = rng.rand(300, 12) + 1
    >>> D[:, 0] = rng.randint(0, 5, 300)
    >>> lat = make_performance_pipeline(s, hidden_layer_sizes=(16,), max_epochs=3,
    ...     random_state=0).fit(np.hstack([X, D]), np.exp((X == 3).sum(1) * 0.2 + D[:, 3]))
    >>> rows = sample_optimizer_inputs(D[:20], 64, random_state=0)
    >>> opt = AmortizedDesignOptimizer(space=s, accuracy=acc, latency=lat, n_steps=20,
    ...                                n_augment=64, random_state=0).fit(rows)
    >>> opt.predict(rows[:3]).shape
    (3, 6)
    """

    _parameter_constraints = {
        "space": [DesignSpace, str],
        "accuracy": [HasMethods(["predict"])],
        "latency": [HasMethods(["predict"])],
        "energy": [HasMethods(["predict"]), None],
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "relaxation": [StrOptions(set(RELAXATIONS))],
        "tau_start": [Interval(Real, 0, None, closed="neither")],
        "tau_end": [Interval(Real, 0, None, closed="neither")],
        "n_steps": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "n_samples": [Interval(Integral, 2, None, closed="left")],
        "entropy_weight": [Interval(Real, 0, None, closed="left")],
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "refine": [Interval(Integral, 0, None, closed="left")],
        "distill": [Interval(Integral, 0, None, closed="left")],
        "distill_refine": [Interval(Integral, 0, None, closed="left")],
        "distill_rounds": [Interval(Integral, 1, None, closed="left")],
        "finetune": [Interval(Real, 0, None, closed="left")],
        "ordinal_shift": ["boolean"],
        "lambda_range": ["array-like"],
        "lambda_zero_fraction": [Interval(Real, 0, 1, closed="both")],
        "n_augment": [Interval(Integral, 0, None, closed="left")],
        "device_jitter": [Interval(Real, 0, None, closed="left")],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
        "device": [str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        space,
        accuracy,
        latency,
        energy=None,
        hidden_layer_sizes=(256, 256),
        activation="relu",
        relaxation="gumbel-softmax",
        tau_start=1.0,
        tau_end=0.1,
        n_steps=2000,
        batch_size=512,
        learning_rate=2e-3,
        n_samples=8,
        entropy_weight=0.01,
        n_estimators=4,
        refine=0,
        distill=16384,
        distill_refine=8,
        distill_rounds=2,
        finetune=0.0,
        ordinal_shift=True,
        lambda_range=LAMBDA_RANGE,
        lambda_zero_fraction=0.1,
        n_augment=4096,
        device_jitter=0.1,
        n_threads=1,
        device="cpu",
        random_state=None,
        verbose=0,
    ):
        self.space = space
        self.accuracy = accuracy
        self.latency = latency
        self.energy = energy
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.relaxation = relaxation
        self.tau_start = tau_start
        self.tau_end = tau_end
        self.n_steps = n_steps
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.n_samples = n_samples
        self.entropy_weight = entropy_weight
        self.n_estimators = n_estimators
        self.refine = refine
        self.distill = distill
        self.distill_refine = distill_refine
        self.distill_rounds = distill_rounds
        self.finetune = finetune
        self.ordinal_shift = ordinal_shift
        self.lambda_range = lambda_range
        self.lambda_zero_fraction = lambda_zero_fraction
        self.n_augment = n_augment
        self.device_jitter = device_jitter
        self.n_threads = n_threads
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ----------------------------------------------------------- sklearn glue
    def __getstate__(self):
        # Derived state (frozen predictor copies, folded networks) is rebuilt on load.
        state = super().__getstate__()
        return {k: v for k, v in state.items() if k not in ("_objective", "_folded")}

    # ------------------------------------------------------------- objective
    @property
    def objective_(self):
        """The :class:`~skedge.optimize.Objective` of the fitted predictors."""
        check_is_fitted(self, "networks_")
        if getattr(self, "_objective", None) is None:
            self._objective = self._make_objective()
        return self._objective

    def _make_objective(self):
        return build_objective(self.space, self.accuracy, self.latency, self.energy)

    def _features(self, obj, encoded, lam):
        """Network input: encoded device columns and normalized log λ."""
        return network_input(encoded, lam, self.lambda_eps_, self.lambda_log_range_)

    def _check_X(self, obj, X, *, reset):
        D, lam = obj.split(X)
        width = D.shape[1] + lam.shape[1]
        if reset:
            self.n_features_in_ = width
        else:
            if width != self.n_features_in_:  # pragma: no cover - split checks the same width
                raise ValueError(f"X has {width} columns; the optimizer was fitted on "
                                 f"{self.n_features_in_}.")
            check_lambdas(lam, self.lambda_range, who=type(self).__name__)
        return D, lam

    # ------------------------------------------------------------------- fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train the optimizer network(s) on optimizer rows, without labels.

        Parameters
        ----------
        X : array-like of shape (n_rows, n_device_columns + n_lambdas)
            ``[device columns..., λ_lat(, λ_en)]``; device columns as the
            latency predictor takes them after the design columns.
        y : None
            Ignored.

        Returns
        -------
        self : object
        """
        with torch_threads(self.n_threads):
            return self._fit(X)

    def _fit(self, X):
        start = time.perf_counter()
        hidden = _check_hidden(self.hidden_layer_sizes)
        lo, hi = check_lambda_range(self.lambda_range)
        if self.tau_end > self.tau_start:
            raise ValueError(
                f"tau_end ({self.tau_end}) must not exceed tau_start ({self.tau_start})."
            )
        device = check_device(self.device)
        obj = self._make_objective()
        D, lam = self._check_X(obj, X, reset=True)
        D_given = D
        self.n_device_columns_ = obj.n_device_columns
        self.lambda_eps_ = lo / 2
        self.lambda_log_range_ = (float(np.log(self.lambda_eps_)), float(np.log(hi + lo / 2)))
        rng = check_random_state(self.random_state)

        pool = training_pool(self, obj, D, lam, (lo, hi), rng)
        self.device_encoding_range_ = pool.encoding_range()
        blocks = blocks_of(obj.space)
        seeds = rng.randint(np.iinfo(np.int32).max, size=self.n_estimators)
        self.networks_, self.loss_curves_ = [], []
        for i, seed in enumerate(seeds):
            t0 = time.perf_counter()
            net, curve = train_network(self, obj, pool, blocks, hidden, int(seed), (lo, hi),
                                       device=device)
            say(self, f"network {i + 1}/{self.n_estimators}: final minibatch objective "
                      f"{curve[-1]:.4f}", t0)
            self.networks_.append(net)
            self.loss_curves_.append(curve)
        rows = distill_student(self, obj, blocks, hidden, D_given, rng) if self.distill else None
        finetune_networks(self, obj, pool if rows is None else rows, blocks, (lo, hi), rng, device)
        self._objective = obj
        self.fit_time_ = time.perf_counter() - start
        return self

    # --------------------------------------------------------------- predict
    def _chunks(self, obj, D, lam, encoded=None):
        """Network inputs, chunk by chunk; ``encoded`` (one device) replaces ``D``'s."""
        for s in range(0, len(D), _CHUNK):
            enc = obj.encode(D[s:s + _CHUNK]) if encoded is None else \
                broadcast_encoding(encoded, len(D[s:s + _CHUNK]))
            yield s, self._features(obj, enc, as_tensor(lam[s:s + _CHUNK]))

    def predict_network(self, X):
        """Designs proposed by each network, before the selection and refinement of :meth:`predict`.

        Returns
        -------
        designs : ndarray of int64, shape (n_estimators, n_rows, n_choices)
        """
        with torch_threads(self.n_threads):
            return self._predict_network(X)

    def _predict_network(self, X):
        obj = self.objective_
        return self._candidates(obj, *self._check_X(obj, X, reset=False))

    def _candidates(self, obj, D, lam, *, encoded=None):
        # Argmax per chunk; folded networks are cached with the networks they came from.
        blocks, n_choices = blocks_of(obj.space), obj.space.n_choices
        idx = torch.empty(len(self.networks_), len(D), n_choices, dtype=torch.long)
        if getattr(self, "_folded", (None,))[0] != tuple(self.networks_):
            self._folded = (tuple(self.networks_), [blocks.fold(n) for n in self.networks_])
        with torch.no_grad():
            for s, F in self._chunks(obj, D, lam, encoded):
                for i, net in enumerate(self._folded[1]):
                    idx[i, s:s + len(F)] = blocks.argmax_folded(net(F))
        flat = obj.space.canonicalize(idx.numpy().reshape(-1, n_choices))
        return flat.reshape(len(self.networks_), len(D), n_choices)

    def predict(self, X):
        """Design for each optimizer row.

        Parameters
        ----------
        X : array-like of shape (n_rows, n_device_columns + n_lambdas)

        Returns
        -------
        designs : ndarray of int64, shape (n_rows, n_choices)
            Canonical option indices.
        """
        with torch_threads(self.n_threads):
            return self._predict(X)

    def _predict(self, X):
        candidates = self._predict_network(X)
        if len(candidates) == 1 and not self.refine:
            return candidates[0]
        obj = self.objective_
        D, lam = obj.split(X)
        return best_of(obj, candidates, D, lam, self.refine)[0]

    def design_probabilities(self, X, *, estimator=0):
        """Soft design of one network: per choice, the softmax of its logits.

        Returns
        -------
        P : ndarray of shape (n_rows, space.n_one_hot)
            Laid out like the one-hot code (``space.option_offsets``); each
            choice block sums to 1.
        """
        obj = self.objective_
        D, lam = self._check_X(obj, X, reset=False)
        if not 0 <= estimator < len(self.networks_):
            raise ValueError(f"estimator must be in 0..{len(self.networks_) - 1}, got {estimator}.")
        blocks = blocks_of(obj.space)
        net = self.networks_[estimator]
        with torch_threads(self.n_threads), torch.no_grad():
            P = [blocks.unpad(torch.softmax(blocks.pad(net(F)), dim=-1))
                 for _, F in self._chunks(obj, D, lam)]
        return torch.cat(P).double().numpy() if P else np.zeros((0, obj.space.n_one_hot))

    def score(self, X, y=None):
        """Negative mean predicted objective of the predicted designs (higher is better).

        Parameters
        ----------
        X : array-like of shape (n_rows, n_device_columns + n_lambdas)
        y : None
            Ignored.

        Returns
        -------
        score : float
        """
        with torch_threads(self.n_threads):
            return -float(np.mean(self.objective_.value(self._predict(X), X)))
