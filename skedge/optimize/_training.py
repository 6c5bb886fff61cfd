"""Training of the amortized optimizer's networks: the row pool, the network input, the loop."""

from __future__ import annotations

import copy

import numpy as np
import torch

from .._torch import MLP, as_tensor, seeded
from ._fitted import kind_column
from ._objective import _unique_rows
from ._relaxation import relaxed_loss
from ._sampling import sample_optimizer_inputs

__all__ = ["TrainingPool", "descend", "finetune_network", "finetune_steps", "network_input",
           "rows_around", "train_network", "training_pool"]


def network_input(encoded, lam, lambda_eps, lambda_log_range):
    """Network input: encoded device columns and ``log(λ + lambda_eps)`` mapped to [-1, 1]."""
    parts = [Z for enc in encoded if enc for Z in enc.values()]
    lo, hi = lambda_log_range
    loglam = (torch.log(lam + lambda_eps) - (lo + hi) / 2) / ((hi - lo) / 2 + 1e-12)
    return torch.cat(parts + [loglam], dim=1)


def broadcast_encoding(encoded, n):
    """One device's ``(lat_enc, en_enc)`` repeated for ``n`` rows."""
    return tuple(None if enc is None else {k: Z.expand(n, -1) for k, Z in enc.items()}
                 for enc in encoded)


class TrainingPool:
    """Training rows with device encodings and references computed once."""

    def __init__(self, obj, D, lam, fresh):
        lat_enc, en_enc = obj.encode(D)
        self.lat = lat_enc
        self.en = en_enc
        self.refs = as_tensor(obj.references(D))
        self.lam = as_tensor(lam)
        self.fresh = torch.as_tensor(fresh)
        self.n = len(D)

    def encoding_range(self):
        """Per predictor, per block: the (min, max) of each encoded device column trained
        on, and whether it varied continuously (a one-hot kind column, only ever 0 or 1,
        did not)."""
        return tuple(None if enc is None else {
            k: (Z.min(0).values, Z.max(0).values, ~((Z == 0) | (Z == 1)).all(0))
            for k, Z in enc.items()} for enc in (self.lat, self.en))

    def __len__(self):
        return self.n

    def encoded_rows(self, idx):
        def pick(enc):
            return None if enc is None else {k: v[idx] for k, v in enc.items()}

        return pick(self.lat), pick(self.en)


def rows_around(est, obj, D, n, lambda_range, rng):
    """``n`` optimizer rows drawn around the distinct device rows of ``D``, as ``est`` says.

    :func:`~skedge.optimize.sample_optimizer_inputs` with the estimator's
    λ-zero fraction and jitter, and the kind column of the objective's latency
    predictor (mixtures stay within a kind).
    """
    known, _ = _unique_rows(np.asarray(D, dtype=np.float64))
    return sample_optimizer_inputs(
        known, n, n_lambdas=obj.n_lambdas, lambda_range=lambda_range,
        lambda_zero_fraction=est.lambda_zero_fraction, jitter=est.device_jitter,
        kind_column=kind_column(obj), random_state=rng,
    )


def training_pool(est, obj, D, lam, lambda_range, rng):
    """The rows ``(D, lam)`` plus ``est.n_augment`` rows drawn around their devices."""
    fresh = np.zeros(len(D), dtype=bool)
    if est.n_augment:
        extra = rows_around(est, obj, D, est.n_augment, lambda_range, rng)
        D = np.vstack([D, extra[:, : obj.n_device_columns]])
        lam = np.vstack([lam, extra[:, obj.n_device_columns:]])
        fresh = np.concatenate([fresh, np.ones(len(extra), dtype=bool)])
    return TrainingPool(obj, D, lam, fresh)


def train_network(est, obj, pool, blocks, hidden, seed, lam_range, *, device="cpu"):
    """Train one optimizer network with the parameters of ``est``; returns (network, loss curve).

    Each step draws a minibatch of pool rows, redraws the λ of the augmented
    rows log-uniformly in ``lam_range`` (exact zeros with probability
    ``est.lambda_zero_fraction``), relaxes the network's designs and descends
    the predicted objective (:func:`~skedge.optimize._relaxation.relaxed_loss`).
    The network trains on ``device`` and returns to the CPU; the predictors'
    work runs where their weights are.
    """
    with seeded(seed):
        lam_probe = torch.zeros(1, obj.n_lambdas)
        probe = pool.encoded_rows(torch.zeros(1, dtype=torch.long))
        n_in = network_input(probe, lam_probe, est.lambda_eps_, est.lambda_log_range_).shape[1]
        net = MLP(n_in, blocks.n_outputs(est.ordinal_shift), hidden, est.activation)
        return descend(est, obj, pool, blocks, net, lam_range, device=device,
                       n_steps=est.n_steps, learning_rate=est.learning_rate,
                       relaxation=est.relaxation, taus=(est.tau_start, est.tau_end))


def finetune_network(est, obj, pool, blocks, net, seed, lam_range, *, device="cpu"):
    """``round(est.finetune * est.n_steps)`` straight-through steps on hard designs from ``net``.

    The predictors see the argmax design itself (canonical and hard, as
    :meth:`predict` answers), so the steps descend the objective of the
    designs the network will propose; from the network's own weights (a copy).
    Returns (network, loss curve).
    """
    net = copy.deepcopy(net)
    for p in net.parameters():
        p.requires_grad_(True)
    with seeded(seed):
        return descend(est, obj, pool, blocks, net, lam_range, device=device,
                       n_steps=finetune_steps(est), learning_rate=est.learning_rate,
                       relaxation="st", taus=(1.0, 1.0))


def finetune_steps(est):
    """Fine-tuning steps of ``est``: ``round(finetune * n_steps)``."""
    return round(est.finetune * est.n_steps)


def descend(est, obj, pool, blocks, net, lam_range, *, device, n_steps, learning_rate,
            relaxation, taus):
    """The training loop of :func:`train_network` and :func:`finetune_network` (seeded by them)."""
    lo, hi = lam_range
    tau_start, tau_end = taus
    batch = min(est.batch_size, len(pool))
    net = net.to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=learning_rate)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(
        opt, T_max=n_steps, eta_min=learning_rate / 10)
    curve, running = [], 0.0
    for step in range(n_steps):
        frac = step / max(1, n_steps - 1)
        tau = tau_start * (tau_end / tau_start) ** frac
        idx = torch.randint(len(pool), (batch,))
        lam = pool.lam[idx].clone()
        redraw = pool.fresh[idx]
        if redraw.any():
            m = int(redraw.sum())
            u = torch.rand(m, obj.n_lambdas)
            new = torch.exp(np.log(lo) + u * (np.log(hi) - np.log(lo)))
            new[torch.rand(m, obj.n_lambdas) < est.lambda_zero_fraction] = 0.0
            lam[redraw] = new
        encoded = pool.encoded_rows(idx)
        F = network_input(encoded, lam, est.lambda_eps_, est.lambda_log_range_)
        logits = net(F.to(device)).cpu()
        loss, value = relaxed_loss(
            obj, blocks, logits, encoded, lam, pool.refs[idx], tau,
            relaxation=relaxation, n_samples=est.n_samples,
            entropy_weight=est.entropy_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        running += value
        if (step + 1) % 10 == 0 or step == n_steps - 1:
            curve.append(running / ((step % 10) + 1))
            running = 0.0
            if est.verbose > 1 and (step + 1) % 200 == 0:
                print(f"  step {step + 1}: tau {tau:.3f} objective {curve[-1]:.4f}")
    net.cpu().eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net, np.asarray(curve)
