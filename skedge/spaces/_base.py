"""The :class:`DesignSpace` base class: a DNN design as a tuple of categorical choices."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from numbers import Integral

import numpy as np
from sklearn.utils import check_random_state

from ._layers import total

__all__ = ["Choice", "DesignSpace"]


@dataclass(frozen=True)
class Choice:
    """One categorical decision of a design space.

    Parameters
    ----------
    name : str
        Column name of the choice (``"e0"``, ``"ks3"``, ...).
    options : tuple
        Human-readable values of the options, in index order.
    """

    name: str
    options: tuple

    @property
    def n_options(self):
        return len(self.options)


class DesignSpace:
    """Base class of categorical DNN design spaces.

    A design is an ordered tuple of categorical choices; a batch of designs is
    an integer array of shape ``(n_designs, n_choices)`` holding option indices.
    That array is the ``X`` every skedge estimator sees.

    Subclasses set :attr:`name` and :attr:`choices`, and may override
    :meth:`canonicalize` (spaces where several index vectors denote the same
    network), :meth:`to_string` / :meth:`from_string` (an official string form)
    and :meth:`_sample_raw` (a non-uniform sampler).

    Attributes
    ----------
    name : str
        Short name of the space (``"nb201"``, ``"fbnet"``, ``"ofa"``).
    choices : tuple of Choice
        The decisions in column order.
    """

    name = "base"
    #: Spaces this small or smaller can be enumerated.
    max_enumerate = 1_000_000

    def __init__(self, choices):
        self.choices = tuple(choices)

    # ------------------------------------------------------------------ shape
    @property
    def n_choices(self):
        """Number of categorical decisions (columns of ``X``)."""
        return len(self.choices)

    @property
    def choice_names(self):
        """Column names of ``X``."""
        return [c.name for c in self.choices]

    @property
    def n_options(self):
        """Number of options of each choice, as an int array."""
        return np.array([c.n_options for c in self.choices], dtype=np.int64)

    @property
    def option_offsets(self):
        """Start column of each choice in the concatenated one-hot encoding."""
        return np.concatenate([[0], np.cumsum(self.n_options)[:-1]]).astype(np.int64)

    @property
    def n_one_hot(self):
        """Width of the concatenated one-hot encoding."""
        return int(self.n_options.sum())

    @property
    def size(self):
        """Number of distinct designs (after canonicalization) as a Python int."""
        return int(np.prod([int(k) for k in self.n_options], dtype=object))

    def __repr__(self):
        return f"{type(self).__name__}()"

    def __eq__(self, other):
        return type(self) is type(other) and self.choices == other.choices

    def __hash__(self):
        return hash((type(self).__name__, self.choices))

    # ------------------------------------------------------------- validation
    def validate(self, X, *, canonicalize=False):
        """Check that ``X`` is a batch of designs of this space.

        Parameters
        ----------
        X : array-like of shape (n_designs, n_choices) or (n_choices,)
            Option indices. A single design is promoted to a batch of one.
        canonicalize : bool, default=False
            Also map every design to its canonical form.

        Returns
        -------
        X : ndarray of int64, shape (n_designs, n_choices)

        Raises
        ------
        ValueError
            With the name of the offending column and value, for non-integer
            or non-finite entries, indices out of range, or a wrong width.
        """
        arr = np.asarray(X)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2:
            raise ValueError(
                f"{self!r}: designs must be a 2-D array of option indices, "
                f"got an array with {arr.ndim} dimensions."
            )
        if arr.shape[1] != self.n_choices:
            raise ValueError(
                f"{self!r}: designs must have {self.n_choices} columns "
                f"({', '.join(self.choice_names[:4])}, ...), got {arr.shape[1]}."
            )
        if arr.dtype.kind not in "iu":
            try:
                as_float = arr.astype(np.float64)
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"{self!r}: designs must be integer option indices, got dtype "
                    f"{arr.dtype}."
                ) from exc
            bad = ~np.isfinite(as_float) | (as_float != np.round(as_float))
            if bad.any():
                row, col = np.argwhere(bad)[0]
                raise ValueError(
                    f"{self!r}: column {self.choice_names[col]!r} holds the "
                    f"non-integer value {arr[row, col]!r} (row {row}); designs "
                    "are integer option indices."
                )
            arr = as_float.astype(np.int64)
        else:
            arr = arr.astype(np.int64, copy=False)
        bad = (arr < 0) | (arr >= self.n_options)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise ValueError(
                f"{self!r}: column {self.choice_names[col]!r} holds index "
                f"{arr[row, col]} (row {row}), outside 0..{self.n_options[col] - 1} "
                f"(options {self.choices[col].options})."
            )
        if canonicalize:
            arr = self.canonicalize(arr)
        return arr

    def canonicalize(self, X):
        """Return the canonical form of each design (identity in most spaces)."""
        return np.array(X, dtype=np.int64, copy=True)

    # --------------------------------------------------------------- sampling
    def sample(self, n, random_state=None):
        """Draw ``n`` designs uniformly at random (canonical form).

        Parameters
        ----------
        n : int
            Number of designs.
        random_state : int, RandomState instance or None
            Seed for reproducible draws.

        Returns
        -------
        X : ndarray of int64, shape (n, n_choices)
        """
        if not isinstance(n, Integral) or n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n!r}.")
        rng = check_random_state(random_state)
        return self.canonicalize(self._sample_raw(int(n), rng))

    def _sample_raw(self, n, rng):
        return (rng.random_sample((n, self.n_choices)) * self.n_options).astype(np.int64)

    def enumerate(self):
        """Return every distinct design, in lexicographic index order.

        Raises
        ------
        ValueError
            If the space has more than :attr:`max_enumerate` designs.
        """
        if self.size > self.max_enumerate:
            raise ValueError(
                f"{self!r} has {self.size:.3g} designs; enumeration is limited to "
                f"{self.max_enumerate:,}. Use sample() or a search instead."
            )
        grid = np.array(list(product(*[range(k) for k in self.n_options])), dtype=np.int64)
        return np.unique(self.canonicalize(grid), axis=0)

    # ------------------------------------------------------------ search moves
    def mutate(self, X, random_state=None, *, n_mutations=1):
        """Change ``n_mutations`` meaningful choices of each design to another option.

        Only choices that matter for the design are mutated (see
        :meth:`mutable_mask`), so every mutation yields a different network.
        Returns new canonical designs; ``X`` is not modified.
        """
        rng = check_random_state(random_state)
        out = self.validate(X).copy()
        k = self.n_options
        rows = np.arange(len(out))
        for _ in range(n_mutations):
            # A random column among the mutable ones: argmax of masked noise.
            noise = rng.random_sample(out.shape) + self.mutable_mask(out)
            cols = noise.argmax(axis=1)
            shift = 1 + (rng.random_sample(len(out)) * (k[cols] - 1)).astype(np.int64)
            out[rows, cols] = (out[rows, cols] + shift) % k[cols]
            out = self.canonicalize(out)
        return out

    def mutable_mask(self, X):
        """Boolean mask (n_designs, n_choices) of the choices that change each design."""
        X = np.asarray(X)
        return np.broadcast_to(self.n_options > 1, X.shape)

    def crossover(self, X1, X2, random_state=None):
        """Uniform crossover: each choice is taken from either parent at random."""
        rng = check_random_state(random_state)
        a, b = self.validate(X1), self.validate(X2)
        if a.shape != b.shape:
            raise ValueError(f"parents must have the same shape, got {a.shape} and {b.shape}.")
        take_b = rng.random_sample(a.shape) < 0.5
        return self.canonicalize(np.where(take_b, b, a))

    def neighbours(self, x):
        """All distinct canonical designs that differ from ``x`` in one choice."""
        x = self.validate(x)[0]
        rows = []
        for col, k in enumerate(self.n_options):
            for opt in range(k):
                if opt != x[col]:
                    y = x.copy()
                    y[col] = opt
                    rows.append(y)
        out = np.unique(self.canonicalize(np.array(rows, dtype=np.int64)), axis=0)
        x_c = self.canonicalize(x[None])[0]
        return out[~(out == x_c).all(axis=1)]

    def is_degenerate(self, X):
        """True for designs whose output does not depend on their input.

        Their measured latency says nothing about the cost of their
        operations (a runtime may skip the dead graph). No design of this
        space is degenerate; NAS-Bench-201 overrides it.

        Examples
        --------
        >>> from skedge.spaces import get_space
        >>> get_space("ofa").is_degenerate(get_space("ofa").sample(2, random_state=0)).tolist()
        [False, False]
        """
        return np.zeros(len(self.validate(X)), dtype=bool)

    # ---------------------------------------------------------- cost counting
    def layers(self, x):
        """Per-layer cost records (:class:`~skedge.spaces.Layer`) of one design."""
        raise NotImplementedError(f"{type(self).__name__} has no layer model.")

    def macs(self, X):
        """Multiply-accumulates per image of each design (the FLOPs proxy).

        Examples
        --------
        >>> from skedge.spaces import NB201Space
        >>> int(NB201Space().macs([[0, 0, 0, 0, 0, 0]])[0]) < int(NB201Space().macs([[3] * 6])[0])
        True
        """
        return self._layer_totals(X, "macs")

    def params(self, X):
        """Weight count of each design."""
        return self._layer_totals(X, "params")

    def _layer_totals(self, X, field):
        X = self.validate(X)
        cache = {}
        out = np.empty(len(X), dtype=np.int64)
        for i, row in enumerate(X):
            key = row.tobytes()
            if key not in cache:
                cache[key] = total(self.layers(row), field)
            out[i] = cache[key]
        return out

    # ------------------------------------------------------- human-readable IO
    def to_dicts(self, X):
        """Convert designs to a list of ``{choice name: option value}`` dicts."""
        X = self.validate(X)
        return [
            {c.name: c.options[i] for c, i in zip(self.choices, row)} for row in X
        ]

    def from_dicts(self, dicts):
        """Convert ``{choice name: option value}`` dicts back to index designs."""
        rows = []
        for r, d in enumerate(dicts):
            missing = [c.name for c in self.choices if c.name not in d]
            if missing:
                raise ValueError(f"design {r} lacks choices {missing}.")
            row = []
            for c in self.choices:
                try:
                    row.append(c.options.index(d[c.name]))
                except ValueError:
                    raise ValueError(
                        f"design {r}: {d[c.name]!r} is not an option of "
                        f"{c.name!r} (options {c.options})."
                    ) from None
            rows.append(row)
        return self.canonicalize(np.array(rows, dtype=np.int64).reshape(-1, self.n_choices))

    def to_string(self, x):
        """String form of one design (``name=value`` pairs unless overridden)."""
        (d,) = self.to_dicts(x)
        return " ".join(f"{k}={v}" for k, v in d.items())

    def from_string(self, s):
        """Parse the string form of one design into a 1-D index array."""
        d = {}
        for tok in s.split():
            key, sep, val = tok.partition("=")
            if not sep:
                raise ValueError(f"cannot parse {tok!r} in design string {s!r}.")
            d[key] = _parse_value(val)
        return self.from_dicts([d])[0]

    def to_strings(self, X):
        """String form of each design in a batch."""
        return [self.to_string(x) for x in self.validate(X)]

    def from_strings(self, strings):
        """Parse a list of design strings into an index array."""
        return np.array([self.from_string(s) for s in strings], dtype=np.int64).reshape(
            -1, self.n_choices
        )


def _parse_value(val):
    for cast in (int, float):
        try:
            return cast(val)
        except ValueError:
            pass
    return val
