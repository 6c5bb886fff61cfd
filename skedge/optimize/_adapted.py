"""Designs for one device under its few-shot adapted predictors.

The amortized optimizer was trained on the predictors as fitted; a device
with a few measured designs is predicted better by an adapted predictor
(:class:`~skedge.fewshot.FewShotAdapter` on the latency pipeline, or an
:class:`~skedge.adaptation.AdaptedDevice` of a
:class:`~skedge.crossdevice.CrossDeviceRegressor`). :func:`design_with_shots`
lets the optimizer *propose* (its designs over a λ sweep, plus greedy moves
around them) and the adapted predictors *choose*: every candidate is scored
under the device's adapted objective, so the design returned for a device
with ten measurements is the best of the proposals under its adapted
predictions. A space small enough to enumerate (NAS-Bench-201's 15,625
cells) is scored whole instead, as :func:`~skedge.optimize.best_under_constraints`
and :class:`~skedge.optimize.SearchBaseline` do: adapting the predictors
already costs more than one pass over every design, and the answer is then
exact for the adapted predictors.
"""

from __future__ import annotations

import numpy as np
import torch

from .._torch import as_tensor, torch_threads
from ._distill import best_of
from ._engines import exhaustive_search
from ._relaxation import blocks_of
from ._rows import lambda_sweep

__all__ = ["AdaptedObjective", "adapted_encoding", "design_with_shots"]


class AdaptedObjective:
    """An :class:`~skedge.optimize.Objective` of ONE device with some metrics replaced.

    Parameters
    ----------
    objective : Objective
    replace : dict of str -> callable
        ``{"latency": f}`` (and/or ``"energy"``): ``f(designs) -> values``, the
        adapted prediction of that metric on the device. The other metrics and
        the per-device normalizers come from the same predictions (the
        normalizer is the geometric mean of the adapted metric over the
        objective's reference designs).

    Examples
    --------
    >>> import numpy as np
    >>> from skedge.optimize import AdaptedObjective
    >>> class Toy:
    ...     space = None; energy = None
    ...     reference_designs = np.array([[0], [1]])
    ...     def references(self, D):
    ...         return np.ones((len(D), 1))
    ...     def metrics(self, designs, D):
    ...         return {"accuracy": designs[:, 0] * 1.0, "latency": designs[:, 0] + 1.0}
    ...     def value_from_metrics(self, m, lam, refs):
    ...         return -m["accuracy"] / 100 + lam[..., 0] * m["latency"] / refs[..., 0]
    >>> adapted = AdaptedObjective(Toy(), {"latency": lambda X: 2.0 * (X[:, 0] + 1.0)})
    >>> adapted.metrics(np.array([[3]]), None)["latency"].tolist()
    [8.0]
    >>> adapted.references(np.zeros((2, 1))).round(3).tolist()
    [[2.828], [2.828]]
    """

    def __init__(self, objective, replace):
        unknown = set(replace) - {"latency", "energy"}
        if unknown:
            raise ValueError(f"only latency and energy can be adapted, not {sorted(unknown)}.")
        self.objective, self.replace = objective, dict(replace)
        self.space, self.energy = objective.space, objective.energy
        ref = {k: np.asarray(f(objective.reference_designs), dtype=np.float64)
               for k, f in self.replace.items()}
        self._refs = {k: float(np.exp(np.log(np.maximum(v, 1e-12)).mean()))
                      for k, v in ref.items()}

    def metrics(self, designs, D):
        """Predicted metrics of ``designs`` on the device, the adapted ones replaced."""
        m = self.objective.metrics(designs, D)
        for name, f in self.replace.items():
            m[name] = np.asarray(f(designs), dtype=np.float64).reshape(-1)
        return m

    def references(self, D):
        """Per-row normalizers ``(n_rows, n_lambdas)`` (the device is the same on every row)."""
        refs = self.objective.references(np.atleast_2d(D)[:1])
        names = ["latency"] + (["energy"] if self.energy is not None else [])
        for j, name in enumerate(names):
            if name in self._refs:
                refs[:, j] = self._refs[name]
        return np.repeat(refs, len(np.atleast_2d(D)), axis=0)

    def value_from_metrics(self, metrics, lam, refs):
        return self.objective.value_from_metrics(metrics, lam, refs)


def adapted_encoding(optimizer, device_row, replace, *, n_probe=256, n_steps=150,
                     learning_rate=0.05, random_state=0):
    """The optimizer's input for a device whose predictions were adapted to measurements.

    The optimizer reads a device as its predictors' encoding of the device
    columns. This finds, inside the box of encodings it was trained on, the
    encoding at which the frozen predictor agrees with the adapted one: the
    centred log predictions of the two on the reference designs plus
    ``n_probe`` random designs are matched by gradient descent, starting from
    the encoding of ``device_row``. Only the shape of the predictions is
    matched (a common factor cancels in the objective's normalization), and
    one-hot columns (the device kind) stay as they are.

    Parameters
    ----------
    optimizer : fitted AmortizedDesignOptimizer
    device_row : ndarray of shape (n_device_columns,)
    replace : dict
        Adapted metrics, as for :class:`AdaptedObjective`.
    n_probe : int, default=256
    n_steps : int, default=150
    learning_rate : float, default=0.05
    random_state : int, default=0
        Seed of the probe designs.

    Returns
    -------
    encoded : tuple
        ``(lat_enc, en_enc)`` as :meth:`Objective.encode
        <skedge.optimize.Objective.encode>` returns it, for one device.

    See Also
    --------
    design_with_shots : uses it, and has an example.
    """
    obj = optimizer.objective_
    box = getattr(optimizer, "device_encoding_range_", (None, None))
    encoded = list(obj.encode(np.asarray(device_row, dtype=np.float64)[None]))
    probe = np.vstack([obj.reference_designs, obj.space.sample(n_probe, random_state)])
    with torch_threads(optimizer.n_threads):
        blocks = blocks_of(obj.space)
        P = blocks.unpad(blocks.one_hot(torch.as_tensor(probe))).float()
        for i, (name, f) in enumerate((("latency", obj.f_lat), ("energy", obj.f_en))):
            if name not in replace or f is None or not encoded[i] or box[i] is None:
                continue
            target = np.log(np.maximum(np.asarray(replace[name](probe), dtype=np.float64),
                                       1e-12))
            encoded[i] = _match(f, P, as_tensor(target - target.mean()), encoded[i], box[i],
                                n_steps, learning_rate)
    return tuple(encoded)


def _match(f, P, target, enc, box, n_steps, learning_rate):
    """Gradient descent on the free columns of one predictor's device encoding.

    Returns the encoding of the lowest mismatch seen, the start included: Adam's
    steps do not shrink with the gradient, so where the start already matches
    (or nothing fits better) the start is kept.
    """
    start = {k: Z.detach().clone() for k, Z in enc.items()}
    free = {k: box[k][2] for k in start}
    params = {k: Z.clone().requires_grad_(True) for k, Z in start.items()}
    step = torch.optim.Adam(list(params.values()), lr=learning_rate)
    best, best_loss = start, np.inf
    for i in range(n_steps + 1):
        step.zero_grad()
        Z = {k: torch.where(free[k], params[k], start[k]).expand(len(P), -1) for k in params}
        logp = torch.log(torch.clamp(f(P, encoded=Z), min=1e-12))
        loss = ((logp - logp.mean() - target) ** 2).mean()
        value = float(loss.detach())
        if value < best_loss - 1e-9 or i == 0:
            best_loss, best = value, {k: Z.detach().clone() for k, Z in params.items()}
        if i == n_steps:
            break
        loss.backward()
        step.step()
        with torch.no_grad():
            for k, Z in params.items():
                Z.copy_(torch.where(free[k], torch.clamp(Z, box[k][0], box[k][1]), start[k]))
    return best


def design_with_shots(optimizer, device_row, lambdas, replace, *, n_refine=2, n_sweep=25,
                      adapt_input=True, max_exhaustive=100_000):
    """Designs for one device chosen under its adapted predictors.

    Parameters
    ----------
    optimizer : fitted AmortizedDesignOptimizer
    device_row : ndarray of shape (n_device_columns,)
    lambdas : ndarray of shape (n_rows, n_lambdas)
        The weights wanted.
    replace : dict
        Adapted metrics, as for :class:`AdaptedObjective`.
    n_refine : int, default=2
        Greedy rounds under the adapted objective after the choice.
    n_sweep : int, default=25
        Log-spaced λ_lat of the proposal sweep (plus 0), over the optimizer's range.
    adapt_input : bool, default=True
        Also propose the optimizer's designs for the adapted device
        (:func:`adapted_encoding`), besides those for ``device_row``.
    max_exhaustive : int, default=100_000
        A space with at most this many designs is scored whole under the
        adapted objective (the exact optimum of the adapted predictions;
        the proposal arguments are then unused). 0 always uses the
        optimizer's proposals.

    Returns
    -------
    designs : ndarray of shape (n_rows, n_choices)
    values : ndarray of shape (n_rows,)
        Their adapted objective.
    n_candidates : int
        Distinct designs proposed by the optimizer's sweep (every design of
        the space when it was scored whole).

    Examples
    --------
    >>> import numpy as np
    >>> from skedge.spaces import NB201Space
    >>> from skedge.pipelines import make_accuracy_pipeline, make_performance_pipeline
    >>> from skedge.optimize import (AmortizedDesignOptimizer, design_with_shots,
    ...                              sample_optimizer_inputs)
    >>> s = NB201Space(); X = s.sample(300, 0)
    >>> acc = make_accuracy_pipeline(s, hidden_layer_sizes=(16,), max_epochs=3,
    ...                              random_state=0).fit(X, 80 + (X == 3).sum(1))
    >>> rng = np.random.RandomState(0); D = rng.rand(300, 12) + 1
    >>> D[:, 0] = rng.randint(0, 5, 300)
    >>> lat = make_performance_pipeline(s, hidden_layer_sizes=(16,), max_epochs=3,
    ...     random_state=0).fit(np.hstack([X, D]), np.exp((X == 3).sum(1) * 0.2 + D[:, 3]))
    >>> opt = AmortizedDesignOptimizer(space=s, accuracy=acc, latency=lat, n_steps=20,
    ...     n_augment=64, distill=64, random_state=0).fit(
    ...     sample_optimizer_inputs(D[:20], 64, random_state=0))
    >>> measured = lambda Z: opt.objective_.metrics(Z, D[0])["latency"] ** 1.5  # steeper
    >>> designs, values, n = design_with_shots(opt, D[0], np.array([[0.01], [0.1]]),
    ...                                        {"latency": measured})
    >>> designs.shape, values.shape, n  # NB201 is scored whole
    ((2, 6), (2,), 15625)
    >>> n = design_with_shots(opt, D[0], np.array([[0.01]]), {"latency": measured},
    ...                       max_exhaustive=0)[2]
    >>> bool(n < 100)  # the optimizer's proposals only
    True
    """
    obj = optimizer.objective_
    lam = np.asarray(lambdas, dtype=np.float64).reshape(len(lambdas), -1)
    space = obj.space
    if space.size <= min(max_exhaustive, space.max_enumerate):
        everything = space.enumerate()
        designs, values, _ = exhaustive_search(AdaptedObjective(obj, replace), everything,
                                               np.asarray(device_row, dtype=np.float64), lam)
        return designs, values, len(everything)
    sweep = lambda_sweep(1, lambda_range=optimizer.lambda_range, n=n_sweep)
    sweep = np.column_stack([sweep] + [np.full(len(sweep), np.median(lam[:, j]))
                                       for j in range(1, lam.shape[1])])
    proposal = np.vstack([lam, sweep])
    rows = np.column_stack([np.tile(device_row, (len(proposal), 1)), proposal])
    proposed = [optimizer.predict(rows)]
    if adapt_input:
        encoded = adapted_encoding(optimizer, device_row, replace)
        with torch_threads(optimizer.n_threads):
            proposed += list(optimizer._candidates(obj, rows[:, :obj.n_device_columns],
                                                   proposal, encoded=encoded))
    proposed = np.unique(np.vstack(proposed), axis=0)
    adapted = AdaptedObjective(obj, replace)
    D = np.tile(device_row, (len(lam), 1))
    candidates = np.repeat(proposed[:, None, :], len(lam), axis=1)
    designs, values = best_of(adapted, candidates, D, lam, n_refine)
    return designs, values, len(proposed)
