"""Distillation of the amortized optimizer: an ensemble plus search teaches one network.

One network trained on the predicted objective settles in one basin of a very
multimodal landscape, and which one depends on the seed. Several networks, the
per-row best of them and a few rounds of greedy refinement are robust, but
every design then costs tens of predictor calls. Here that robust (and slow)
combination labels many ``(device, λ)`` rows once, at fit time, and one
student network learns to reproduce its designs by cross-entropy: at predict
time the robust designs cost one forward pass again.

The student is a better starting point for greedy search than the teachers
(on OFA with bit-widths, its designs refined by four rounds beat the
teachers' eight-round labels on about 80 % of the rows), so the labelling is
iterated, as in expert iteration (Anthony et al., "Thinking Fast and Slow with
Deep Learning and Tree Search", NeurIPS 2017): the student's designs, refined,
replace the labels wherever their predicted objective is better, and the next
student learns from those. A label never gets worse from one round to the next.

With ``finetune`` the student, last, descends the predicted objective of its own
hard designs (straight-through, from its distilled weights,
:func:`finetune_networks`). That improves the predicted objective a lot but
also exploits the predictors' errors, so it is off by default
(docs/benchmarks.rst, "Fine-tuning the student").
"""

from __future__ import annotations

import time

import numpy as np
import torch

from .._torch import MLP, as_tensor, seeded
from ._engines import candidate_values, greedy_refine
from ._training import TrainingPool, finetune_network, finetune_steps, network_input, rows_around

__all__ = ["best_of", "distill_network", "distill_student", "finetune_networks", "say"]


def best_of(obj, candidates, D, lam, n_refine):
    """Per row, the candidate with the best predicted objective, then ``n_refine`` greedy rounds.

    Parameters
    ----------
    obj : Objective
    candidates : ndarray of shape (n_sets, n_rows, n_choices)
    D, lam : ndarray
        Device columns and weights of the rows.
    n_refine : int

    Returns
    -------
    designs : ndarray of shape (n_rows, n_choices)
    values : ndarray of shape (n_rows,)
        Their predicted objective.
    """
    n = candidates.shape[1]
    if n == 0:
        return candidates[0], np.zeros(0)
    refs = obj.references(D)
    values = candidate_values(obj, candidates, D, lam, refs)
    best = values.argmin(axis=0)
    designs = candidates[best, np.arange(n)].copy()
    values = values[best, np.arange(n)].copy()
    if n_refine:
        designs, values = greedy_refine(obj, designs, values, D, lam, refs, n_refine)
    return designs, values


def distill_network(est, obj, blocks, hidden, D, lam, targets, seed):
    """Train one network to output ``targets`` for the rows ``(D, lam)`` (cross-entropy).

    Choices a target design does not use (``space.mutable_mask``) do not count.
    Runs ``est.n_steps`` Adam steps of ``est.batch_size`` rows with the
    learning-rate schedule of the objective training; returns the network
    (CPU, eval mode, frozen) and the loss curve (mean every 10 steps).
    """
    space = obj.space
    with torch.no_grad():
        F = network_input(obj.encode(D), as_tensor(lam), est.lambda_eps_, est.lambda_log_range_)
    Y = torch.as_tensor(targets, dtype=torch.long)
    W = torch.as_tensor(np.asarray(space.mutable_mask(targets)) & (space.n_options > 1),
                        dtype=torch.float32)
    W = W / W.sum(1, keepdim=True).clamp(min=1.0)
    batch = min(est.batch_size, len(F))
    with seeded(seed):
        net = MLP(F.shape[1], blocks.n_outputs(est.ordinal_shift), hidden, est.activation)
        opt = torch.optim.Adam(net.parameters(), lr=est.learning_rate)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(
            opt, T_max=est.n_steps, eta_min=est.learning_rate / 10)
        curve, running = [], 0.0
        for step in range(est.n_steps):
            idx = torch.randint(len(F), (batch,))
            grid = blocks.pad(net(F[idx]))  # (batch, n_choices, width), -inf padding
            logp = torch.log_softmax(grid, dim=-1)
            nll = -logp.gather(-1, Y[idx].unsqueeze(-1)).squeeze(-1)
            loss = (nll * W[idx]).sum(1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            running += loss.item()
            if (step + 1) % 10 == 0 or step == est.n_steps - 1:
                curve.append(running / ((step % 10) + 1))
                running = 0.0
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net, np.asarray(curve)


def distill_student(est, obj, blocks, hidden, known, rng):
    """Replace the fitted networks of ``est`` by one student of their refined per-row best.

    ``est.distill`` rows are drawn around the ``known`` device rows like the
    augmented training rows; the teachers (``est.networks_``, per-row best,
    then ``est.distill_refine`` greedy rounds) label them and
    :func:`distill_network` trains the student. Each further round of
    ``est.distill_rounds`` refines the student's designs on the same rows by
    ``est.distill_refine`` greedy rounds, keeps them as labels where they beat
    the current label's predicted objective, and trains a new student. Sets
    ``networks_``, ``distill_agreement_``, ``distill_curve_`` and
    ``distill_relabelled_`` on ``est``; returns the distillation rows.
    """
    rows = rows_around(est, obj, known, est.distill, est.lambda_range, rng)
    D, lam = rows[:, : obj.n_device_columns], rows[:, obj.n_device_columns:]
    t0 = time.perf_counter()
    labels, values = best_of(obj, est._candidates(obj, D, lam), D, lam, est.distill_refine)
    say(est, f"{len(rows):,} distillation rows labelled by the per-row best of "
              f"{len(est.networks_)} networks and {est.distill_refine} greedy "
              f"round{'s' * (est.distill_refine != 1)}", t0)
    est.distill_relabelled_ = []
    for round_ in range(est.distill_rounds):
        if round_:
            # The student's designs, refined, where they beat the labels: never worse.
            t0 = time.perf_counter()
            proposed, proposed_values = best_of(obj, est._candidates(obj, D, lam), D, lam,
                                                est.distill_refine)
            better = proposed_values < values
            labels[better], values[better] = proposed[better], proposed_values[better]
            est.distill_relabelled_.append(float(better.mean()))
            say(est, f"round {round_ + 1}: the student's designs, refined, relabel "
                      f"{better.mean():.1%} of the rows", t0)
        t0 = time.perf_counter()
        net, curve = distill_network(est, obj, blocks, hidden, D, lam, labels,
                                     int(rng.randint(np.iinfo(np.int32).max)))
        est.networks_ = [net]
        say(est, f"student {round_ + 1}/{est.distill_rounds} trained, final "
                  f"cross-entropy {curve[-1]:.3f}", t0)
    student = est._candidates(obj, D, lam)[0]
    est.distill_agreement_ = float((student == labels).all(axis=1).mean())
    est.distill_curve_ = curve
    say(est, f"the student reproduces the labelled design on {est.distill_agreement_:.1%} "
              f"of the {len(rows):,} rows")
    return rows


def finetune_networks(est, obj, rows, blocks, lam_range, rng, device):
    """Fine-tune every network of ``est`` by straight-through steps (:func:`finetune_network`).

    ``rows`` is a :class:`~skedge.optimize._training.TrainingPool` or an array of
    optimizer rows (the distillation rows), whose λ are then redrawn at every
    step. Sets ``finetune_curves_`` (empty with ``finetune=0``) and replaces
    ``networks_``.
    """
    est.finetune_curves_ = []
    if not finetune_steps(est):
        return
    pool = rows
    if not isinstance(rows, TrainingPool):
        n = obj.n_device_columns
        pool = TrainingPool(obj, rows[:, :n], rows[:, n:], np.ones(len(rows), dtype=bool))
    for i, net in enumerate(est.networks_):
        t0 = time.perf_counter()
        est.networks_[i], curve = finetune_network(
            est, obj, pool, blocks, net, int(rng.randint(np.iinfo(np.int32).max)), lam_range,
            device=device)
        est.finetune_curves_.append(curve)
        say(est, f"network {i + 1}/{len(est.networks_)} fine-tuned on its hard designs, "
                  f"final minibatch objective {curve[-1]:.4f}", t0)


def say(est, message, start=None):
    """A line of ``fit``'s progress at ``verbose >= 1``, with the seconds since ``start``."""
    if est.verbose:
        took = "" if start is None else f" ({time.perf_counter() - start:.0f} s)"
        print(f"[AmortizedDesignOptimizer] {message}{took}", flush=True)
