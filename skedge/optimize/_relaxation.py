"""Relaxations: categorical design choices made trainable for the amortized optimizer.

The optimizer network outputs one logit per option of each choice.
:class:`_Blocks` lays those logits out per choice of a space and turns them
into (relaxed) designs the frozen predictors can score: a Gumbel-softmax or
plain softmax soft design, a straight-through hard design, or (REINFORCE)
sampled hard designs; :func:`relaxed_loss` is the training loss of a
minibatch under each relaxation (see ``relaxation`` in
:class:`~skedge.optimize.AmortizedDesignOptimizer`).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

__all__ = ["RELAXATIONS", "blocks_of", "relaxed_loss"]

RELAXATIONS = ("gumbel-softmax", "gumbel-st", "st", "softmax", "reinforce")


@functools.lru_cache(maxsize=8)
def blocks_of(space):
    """The :class:`_Blocks` of a space, built once (it costs ~50 ms for OFA with bits)."""
    return _Blocks(space)


class _Blocks:
    """Per-choice softmax / argmax over the concatenated one-hot layout of a space.

    Designs are laid out on a padded grid (n, n_choices, max options) with
    ``-inf`` logits for the options a choice lacks.

    Some choices matter only for some designs (an OFA block beyond its stage's
    depth); the canonical design pins them to one option. The predictors only
    ever saw canonical designs, so the relaxed designs shown to them are made
    canonical too, or the network learns to exploit predictions for index
    vectors no real design has. Where a choice's activity is decided by one
    other choice (found by probing ``space.mutable_mask``), this is done
    differentiably: the choice's block becomes ``p_active * P + (1 - p_active) *
    one_hot(canonical)``, so both the controlling choice (e.g. the depth) and
    the controlled ones get gradients. Other inactive choices are pinned to
    their canonical option without gradient.
    """

    def __init__(self, space):
        k = space.n_options
        self.space = space
        self.n_choices, self.width = len(k), int(k.max())
        # Column of each one-hot entry in the padded (n_choices x max options) grid.
        self.pos = torch.as_tensor(
            np.concatenate([c * self.width + np.arange(kc) for c, kc in enumerate(k)]))
        self.n_one_hot = int(k.sum())
        # Ordinal choices (numeric, monotonic options: kernel sizes, resolutions, bits)
        # get one extra network output each, a shift ``a`` added as ``a * t`` to the
        # option logits, ``t`` the option's position scaled to [-1, 1]. It moves
        # probability mass along the option axis as a whole (see the class Notes).
        self.ordinal = np.array([_is_ordinal(c.options) for c in space.choices], dtype=bool)
        self.n_ordinal = int(self.ordinal.sum())
        choice_of_col = np.repeat(np.arange(len(k)), k)
        option_of_col = np.concatenate([np.arange(kc) for kc in k])
        # Per one-hot column: which shift output applies (the extra zero column for
        # nominal choices) and its position t.
        shift_of_choice = np.full(len(k), self.n_ordinal)
        shift_of_choice[self.ordinal] = np.arange(self.n_ordinal)
        self.shift_col = torch.as_tensor(shift_of_choice[choice_of_col])
        t = option_of_col / np.maximum(k[choice_of_col] - 1, 1) * 2.0 - 1.0
        self.col_t = torch.as_tensor(np.where(self.ordinal[choice_of_col], t, 0.0),
                                     dtype=torch.float32)
        # Choices grouped by option count, for an argmax without the padded grid.
        offsets = space.option_offsets
        self.groups = [(np.flatnonzero(k == kc), torch.as_tensor(
            (offsets[k == kc][:, None] + np.arange(kc)).ravel())) for kc in np.unique(k)]
        self._find_controllers()

    def n_outputs(self, shift):
        return self.n_one_hot + (self.n_ordinal if shift else 0)

    def _find_controllers(self):
        space, k = self.space, self.space.n_options
        rng = np.random.RandomState(0)
        raw = (rng.random_sample((512, len(k))) * k).astype(np.int64)
        mask = np.asarray(space.mutable_mask(raw)) | (k <= 1)
        canon = space.canonicalize(raw)
        self.controlled, self.controller, self.active, self.canon_option = [], [], [], []
        self.pinned = np.zeros(len(k), dtype=bool)  # inactive sometimes, no single controller
        for c in np.flatnonzero(~mask.all(axis=0)):
            values = np.unique(canon[~mask[:, c], c])
            found = None
            for dc in range(len(k)):
                if dc == c:
                    continue
                act = np.zeros(self.width)
                ok = len(values) == 1
                for o in range(k[dc]):
                    seen = mask[raw[:, dc] == o, c]
                    if len(seen) == 0 or seen.min() != seen.max():
                        ok = False
                        break
                    act[o] = float(seen[0])
                if ok:
                    found = (dc, act)
                    break
            if found is None:
                self.pinned[c] = True
                continue
            self.controlled.append(c)
            self.controller.append(found[0])
            self.active.append(found[1])
            self.canon_option.append(int(values[0]))
        if self.controlled:
            self.active = torch.as_tensor(np.array(self.active), dtype=torch.float32)
            self.canon_one_hot = self.one_hot(torch.as_tensor(self.canon_option))

    def option_logits(self, out):
        """Network outputs -> option logits in the one-hot layout (n, n_one_hot)."""
        logits = out[:, : self.n_one_hot]
        if out.shape[1] == self.n_one_hot:
            return logits
        shifts = torch.cat([out[:, self.n_one_hot:], out.new_zeros(out.shape[0], 1)], dim=1)
        return logits + shifts[:, self.shift_col] * self.col_t

    def pad(self, out):
        """Network outputs -> padded option logits (n, n_choices, width)."""
        grid = out.new_full((out.shape[0], self.n_choices * self.width), -torch.inf)
        grid[:, self.pos] = self.option_logits(out)
        return grid.view(-1, self.n_choices, self.width)

    def unpad(self, grid):
        return grid.reshape(grid.shape[0], -1)[:, self.pos]

    def fold(self, net):
        """``net`` (an MLP) with the ordinal shifts folded into its last layer, outputs grouped.

        The option logits of :meth:`option_logits` are linear in the last layer's
        outputs, so a last layer can produce them directly: one matrix product
        instead of a gather per row. Its outputs are ordered group by group (the
        choices with the same option count side by side), so that
        :meth:`argmax_folded` reads each group as a view. For predicting only.
        """
        layers = list(net.net)
        W, b = layers[-1].weight.detach().double(), layers[-1].bias.detach().double()
        Wl, bl = W[: self.n_one_hot].clone(), b[: self.n_one_hot].clone()
        if W.shape[0] > self.n_one_hot:
            has = self.shift_col < self.n_ordinal
            src = self.n_one_hot + self.shift_col[has]
            t = self.col_t[has].double()
            Wl[has] += t[:, None] * W[src]
            bl[has] += t * b[src]
        order = torch.cat([cols for _, cols in self.groups])
        # skip_init: no random initialization, so the global torch RNG is left alone.
        last = torch.nn.utils.skip_init(torch.nn.Linear, W.shape[1], self.n_one_hot)
        with torch.no_grad():
            last.weight.copy_(Wl[order])
            last.bias.copy_(bl[order])
        return torch.nn.Sequential(*layers[:-1], last).eval()

    def argmax_folded(self, out):
        """Option indices (n, n_choices) from the outputs of a :meth:`fold` network."""
        idx = torch.empty(out.shape[0], self.n_choices, dtype=torch.long)
        start = 0
        for choices, cols in self.groups:
            stop = start + len(cols)
            idx[:, choices] = out[:, start:stop].view(out.shape[0], len(choices), -1).argmax(-1)
            start = stop
        return idx

    def argmax(self, out):
        # Per group of choices with the same option count: cheaper than the padded
        # grid, which is mostly padding for OFA (25 resolutions, 3 options elsewhere).
        logits = self.option_logits(out)
        idx = torch.empty(out.shape[0], self.n_choices, dtype=torch.long)
        for choices, cols in self.groups:
            idx[:, choices] = logits[:, cols].view(out.shape[0], len(choices), -1).argmax(-1)
        return idx

    def gumbel(self, shape):
        return -torch.log(-torch.log(torch.rand(shape).clamp_(1e-10, 1.0 - 1e-7)))

    def one_hot(self, x):
        return torch.zeros(x.shape + (self.width,)).scatter_(-1, x.unsqueeze(-1), 1.0)

    def expected(self, grid):
        """Differentiable canonical form of soft designs (controlled choices only)."""
        if not self.controlled:
            return grid
        p = (grid[:, self.controller, :] * self.active).sum(-1, keepdim=True)
        out = grid.clone()
        out[:, self.controlled] = p * grid[:, self.controlled] + (1 - p) * self.canon_one_hot
        return out

    def canonicalize(self, grid, x, *, only_pinned=False):
        """Pin the choices that do not matter for the hard designs ``x`` to their
        canonical option (no gradient through them)."""
        xn = x.numpy()
        fixed = ~np.asarray(self.space.mutable_mask(xn)) & (self.space.n_options > 1)
        if only_pinned:
            fixed &= self.pinned
        if not fixed.any():
            return grid
        canon = torch.as_tensor(self.space.canonicalize(xn))
        return torch.where(torch.as_tensor(fixed).unsqueeze(-1), self.one_hot(canon), grid)

    def relax(self, logits, relaxation, tau):
        """Soft (or straight-through hard) design from logits; see ``relaxation``."""
        L = self.pad(logits)
        if relaxation.startswith("gumbel"):
            L = L + self.gumbel(L.shape)
        soft = torch.softmax(L / tau, dim=-1)
        x = soft.detach().argmax(-1)
        soft = self.expected(soft)
        if relaxation.endswith("st"):
            # The predictors see the canonical hard design; gradients follow the soft one.
            soft = self.canonicalize(self.one_hot(x), x) - soft.detach() + soft
        else:
            soft = self.canonicalize(soft, x, only_pinned=True)
        return self.unpad(soft)


def _is_ordinal(options):
    """Numeric options in strictly monotonic order (at least three of them)."""
    if len(options) < 3 or not all(
            isinstance(o, (int, float, np.integer, np.floating)) and not isinstance(o, bool)
            for o in options):
        return False
    d = np.diff(np.asarray(options, dtype=np.float64))
    return bool((d > 0).all() or (d < 0).all())


def relaxed_loss(objective, blocks, logits, encoded, lam, refs, tau, *, relaxation,
                 n_samples=8, entropy_weight=0.01):
    """Training loss of a minibatch and its mean predicted objective.

    Parameters
    ----------
    objective : Objective
    blocks : _Blocks
        The layout of the space (:func:`blocks_of`).
    logits : torch.Tensor of shape (batch, n_outputs)
        Network outputs.
    encoded, lam, refs
        Encoded device columns, weights and per-device normalizers of the rows.
    tau : float
        Softmax temperature.
    relaxation : str
        One of :data:`RELAXATIONS`.
    n_samples, entropy_weight
        ``"reinforce"`` only: designs sampled per row, weight of the entropy bonus.

    Returns
    -------
    loss : torch.Tensor (scalar)
    value : float
        Mean predicted objective of the minibatch's designs.
    """
    if relaxation != "reinforce":
        P = blocks.relax(logits, relaxation, tau)
        f = objective.torch_value(P, encoded, lam, refs)
        return f.mean(), f.mean().item()
    # Score function: E_x~pi f(x) with a per-row standardized leave-one-out baseline,
    # so every (d, lambda) row weighs the same whatever the scale of its objective.
    S = n_samples
    logp_all = torch.log_softmax(blocks.pad(logits) / tau, dim=-1)  # (B, C, K)
    with torch.no_grad():
        g = -torch.log(-torch.log(torch.rand((S,) + logp_all.shape).clamp_(1e-10, 1 - 1e-7)))
        x = (logp_all.unsqueeze(0) + g).argmax(-1)  # (S, B, C)
        x_flat = x.reshape(-1, x.shape[-1])
        P = blocks.unpad(blocks.canonicalize(blocks.one_hot(x_flat), x_flat))

        def rep(enc):
            return None if enc is None else {k: v.repeat(S, 1) for k, v in enc.items()}

        f = objective.torch_value(P, tuple(rep(e) for e in encoded), lam.repeat(S, 1),
                                  refs.repeat(S, 1)).view(S, -1)
        base = (f.sum(0, keepdim=True) - f) / (S - 1)
        adv = (f - base) / (f.std(0, keepdim=True) + 1e-6)
    logp = logp_all.unsqueeze(0).expand(S, -1, -1, -1).gather(-1, x.unsqueeze(-1))
    logp = logp.squeeze(-1).sum(-1)  # (S, B)
    p = logp_all.exp()
    entropy = -(torch.where(p > 0, p * logp_all, torch.zeros_like(p))).sum((-1, -2))
    loss = (adv * logp).mean() - entropy_weight * entropy.mean()
    return loss, f.mean().item()
