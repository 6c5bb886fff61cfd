"""Design spaces: validation, sampling, search moves, string IO, canonical form, costs."""

import numpy as np
import pandas as pd
import pytest

from skedge.datasets import nb201_arch_idx, nb201_designs
from skedge.spaces import DesignSpace, FBNetSpace, NB201Space, OFASpace, get_space
from skedge.spaces.ofa import BITS, DEPTHS, EXPANDS, KERNELS, N_STAGES, RESOLUTIONS

SPACES = [NB201Space(), FBNetSpace(), OFASpace(), OFASpace(quantize=True)]
IDS = ["nb201", "fbnet", "ofa", "ofa-quant"]

ARCH0 = (
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|"
    "+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
)


@pytest.fixture(params=SPACES, ids=IDS)
def space(request):
    return request.param


def _meaningful_diff(space, a, b):
    """Columns where ``a`` and ``b`` differ among the choices that matter to both."""
    both = space.mutable_mask(a[None])[0] & space.mutable_mask(b[None])[0]
    return np.flatnonzero((a != b) & both)


# ------------------------------------------------------------------ validation
def test_validate_accepts_and_promotes(space):
    X = space.sample(3, random_state=0)
    out = space.validate(X)
    assert out.dtype == np.int64 and out.shape == (3, space.n_choices)
    assert space.validate(X[0]).shape == (1, space.n_choices)
    # Integral floats are accepted as indices.
    np.testing.assert_array_equal(space.validate(X.astype(float)), X)


def test_validate_out_of_range_names_column_and_value(space):
    X = space.sample(2, random_state=1)
    col = space.n_choices - 1
    X[1, col] = space.n_options[col]
    with pytest.raises(ValueError) as exc:
        space.validate(X)
    msg = str(exc.value)
    assert repr(space.choice_names[col]) in msg and str(space.n_options[col]) in msg
    X[1, col] = -1
    with pytest.raises(ValueError, match=f"{space.choice_names[col]!r}.*-1"):
        space.validate(X)


@pytest.mark.parametrize("bad", [1.5, np.nan, np.inf])
def test_validate_non_integer(space, bad):
    X = space.sample(2, random_state=2).astype(float)
    X[0, 2] = bad
    with pytest.raises(ValueError, match=f"{space.choice_names[2]!r}.*non-integer"):
        space.validate(X)


def test_validate_strings_and_shapes(space):
    with pytest.raises(ValueError, match="integer"):
        space.validate(np.full((1, space.n_choices), "a"))
    with pytest.raises(ValueError, match=f"{space.n_choices} columns.*got {space.n_choices + 1}"):
        space.validate(np.zeros((2, space.n_choices + 1), dtype=int))
    with pytest.raises(ValueError, match="2-D.*3 dimensions"):
        space.validate(np.zeros((2, 2, space.n_choices), dtype=int))


# ------------------------------------------------------------------ sampling
def test_sample_deterministic_valid_canonical(space):
    a = space.sample(50, random_state=0)
    np.testing.assert_array_equal(a, space.sample(50, random_state=0))
    assert not np.array_equal(a, space.sample(50, random_state=1))
    assert a.shape == (50, space.n_choices)
    np.testing.assert_array_equal(space.validate(a), a)
    np.testing.assert_array_equal(space.canonicalize(a), a)
    # Every option of every choice is reachable (not a constant sampler).
    assert (a.max(axis=0) > 0).all() or isinstance(space, OFASpace)
    assert space.sample(0, random_state=0).shape == (0, space.n_choices)
    with pytest.raises(ValueError, match="non-negative"):
        space.sample(-1)


# ------------------------------------------------------------------ string / dict IO
def test_strings_round_trip(space):
    X = space.sample(20, random_state=3)
    strings = space.to_strings(X)
    assert len(strings) == 20 and all(isinstance(s, str) for s in strings)
    assert len(set(strings)) == len(np.unique(X, axis=0))
    np.testing.assert_array_equal(space.from_strings(strings), X)


def test_dicts_round_trip(space):
    X = space.sample(20, random_state=4)
    dicts = space.to_dicts(X)
    assert set(dicts[0]) == set(space.choice_names)
    for c in space.choices:
        assert dicts[0][c.name] in c.options
    np.testing.assert_array_equal(space.from_dicts(dicts), X)
    bad = dict(dicts[0])
    bad[space.choice_names[0]] = "not-an-option"
    with pytest.raises(ValueError, match="not an option"):
        space.from_dicts([bad])
    del bad[space.choice_names[0]]
    with pytest.raises(ValueError, match="lacks"):
        space.from_dicts([bad])


# ------------------------------------------------------------------ search moves
def test_mutate_changes_every_design(space):
    X = space.sample(200, random_state=5)
    Y = space.mutate(X, random_state=6)
    assert Y.shape == X.shape
    assert (Y != X).any(axis=1).all()
    np.testing.assert_array_equal(space.canonicalize(Y), Y)
    np.testing.assert_array_equal(space.validate(Y), Y)
    np.testing.assert_array_equal(Y, space.mutate(X, random_state=6))
    # Input is not modified.
    np.testing.assert_array_equal(X, space.sample(200, random_state=5))
    for x, y in zip(X, Y):
        assert len(_meaningful_diff(space, x, y)) == 1


def test_crossover_takes_each_choice_from_a_parent(space):
    A = space.sample(100, random_state=7)
    B = space.sample(100, random_state=8)
    C = space.crossover(A, B, random_state=9)
    np.testing.assert_array_equal(space.canonicalize(C), C)
    active = space.mutable_mask(C)
    from_parent = (C == A) | (C == B)
    assert from_parent[active].all()
    # Choices the child does not use are in canonical (zero) form.
    assert (C[~active] == 0).all()
    # Both parents contribute.
    assert ((C == A) & (C != B)).any() and ((C == B) & (C != A)).any()
    with pytest.raises(ValueError, match="same shape"):
        space.crossover(A[:2], B[:3])


def test_neighbours_differ_in_one_meaningful_choice(space):
    x = space.sample(1, random_state=10)[0]
    N = space.neighbours(x)
    assert len(np.unique(N, axis=0)) == len(N)
    assert not (N == x).all(axis=1).any()
    np.testing.assert_array_equal(space.canonicalize(N), N)
    for y in N:
        assert len(_meaningful_diff(space, x, y)) == 1
    mask = space.mutable_mask(x[None])[0]
    assert len(N) == int((space.n_options[mask] - 1).sum())


def test_neighbours_count_nb201_fbnet():
    assert len(NB201Space().neighbours([0] * 6)) == 6 * 4
    assert len(FBNetSpace().neighbours([0] * 22)) == 22 * 8


# ------------------------------------------------------------------ enumeration and size
def test_nb201_enumerate_and_size():
    space = NB201Space()
    X = space.enumerate()
    assert X.shape == (15_625, 6) and space.size == 15_625
    assert len(np.unique(X, axis=0)) == 15_625


@pytest.mark.parametrize("space", SPACES[1:], ids=IDS[1:])
def test_large_spaces_refuse_enumeration(space):
    with pytest.raises(ValueError, match="enumeration is limited"):
        space.enumerate()


def test_sizes():
    assert FBNetSpace().size == 9**22
    assert OFASpace().size == (9**2 + 9**3 + 9**4) ** 5 * 25
    assert OFASpace(quantize=True).size == (81**2 + 81**3 + 81**4) ** 5 * 25
    assert isinstance(OFASpace().size, int)


# ------------------------------------------------------------------ OFA canonical form
def test_ofa_inactive_blocks_are_zeroed():
    for space in (OFASpace(), OFASpace(quantize=True)):
        X = (np.random.RandomState(0).random_sample((50, space.n_choices)) * space.n_options)
        C = space.canonicalize(X.astype(np.int64))
        active = space.active_blocks(C)
        n = active.shape[1]
        per_block = [C[:, :n], C[:, n : 2 * n]]
        if space.quantize:
            per_block += [C[:, space._WB], C[:, space._AB]]
        for block_cols in per_block:
            assert (block_cols[~active] == 0).all()
        # Depth d means the first d blocks of the stage are active.
        depth = np.asarray(DEPTHS)[C[:, space._D]]
        np.testing.assert_array_equal(active.reshape(-1, N_STAGES, 4).sum(axis=2), depth)


def test_ofa_designs_differing_in_inactive_blocks_are_equal():
    space = OFASpace()
    x = space.sample(1, random_state=0)[0]
    x[space._D] = 0  # depth 2 everywhere: blocks 2, 3 of each stage are inactive
    y = x.copy()
    y[2] = 2  # kernel of block 2 (inactive)
    y[20 + 3] = 1  # expand of block 3 (inactive)
    assert not np.array_equal(x, y)
    np.testing.assert_array_equal(space.canonicalize(x[None]), space.canonicalize(y[None]))
    assert space.to_strings(space.canonicalize(x)) == space.to_strings(space.canonicalize(y))
    # Strings name the network, so they ignore the inactive blocks too.
    assert space.to_string(x) == space.to_string(y)
    assert space.macs([x])[0] == space.macs([y])[0]
    # Changing an active block does change the design.
    z = x.copy()
    z[0] = (z[0] + 1) % 3
    assert not np.array_equal(space.canonicalize(z[None]), space.canonicalize(x[None]))


def test_ofa_size_formula_brute_force_one_stage():
    """Enumerate one stage's choices; distinct canonical networks = sum_d 9**d."""
    space = OFASpace()
    grid = np.stack(
        np.meshgrid(*[np.arange(3)] * 9, indexing="ij"), axis=-1
    ).reshape(-1, 9)  # ks0..ks3, e0..e3, d0
    X = np.zeros((len(grid), space.n_choices), dtype=np.int64)
    X[:, 0:4] = grid[:, 0:4]
    X[:, 20:24] = grid[:, 4:8]
    X[:, space._D.start] = grid[:, 8]
    per_stage = len(np.unique(space.canonicalize(X), axis=0))
    assert per_stage == sum((len(KERNELS) * len(EXPANDS)) ** d for d in DEPTHS) == 7371
    assert space.size == per_stage**N_STAGES * len(RESOLUTIONS)


def test_ofa_quant_size_formula_one_block():
    """Block 3 of stage 0 is active only at depth 4: 81 variants then, 1 otherwise."""
    space = OFASpace(quantize=True)
    grid = np.stack(np.meshgrid(*[np.arange(3)] * 5, indexing="ij"), axis=-1).reshape(-1, 5)
    X = np.zeros((len(grid), space.n_choices), dtype=np.int64)
    b = 3
    X[:, b] = grid[:, 0]
    X[:, 20 + b] = grid[:, 1]
    X[:, space._WB.start + b] = grid[:, 2]
    X[:, space._AB.start + b] = grid[:, 3]
    X[:, space._D.start] = grid[:, 4]
    per_block = len(KERNELS) * len(EXPANDS) * len(BITS) ** 2
    assert len(np.unique(space.canonicalize(X), axis=0)) == per_block + 2


# ------------------------------------------------------------------ costs
def test_nb201_costs_grow_with_bigger_ops():
    space = NB201Space()
    base = np.array([[1, 1, 1, 1, 1, 1]])
    for edge in range(6):
        conv = base.copy()
        conv[0, edge] = 3
        none = base.copy()
        none[0, edge] = 0
        assert space.macs(conv)[0] > space.macs(none)[0] > 0
        assert space.params(conv)[0] > space.params(none)[0] > 0
    assert space.macs([[3] * 6])[0] > space.macs([[2] * 6])[0] > space.macs([[0] * 6])[0]


def test_fbnet_costs_grow_with_bigger_block():
    space = FBNetSpace()
    small = np.zeros((1, 22), dtype=np.int64)  # k3_e1 everywhere
    big = small.copy()
    big[0, 5] = FBNetSpace.ops.index("k5_e6")
    assert space.macs(big)[0] > space.macs(small)[0] > 0
    assert space.params(big)[0] > space.params(small)[0] > 0


def test_ofa_costs_grow_with_expand_and_resolution():
    for space in (OFASpace(), OFASpace(quantize=True)):
        x = space.sample(1, random_state=3)
        x[0, 20] = 0  # block 0 (always active) expand 3
        big_e = x.copy()
        big_e[0, 20] = 2  # expand 6
        assert space.macs(big_e)[0] > space.macs(x)[0] > 0
        assert space.params(big_e)[0] > space.params(x)[0] > 0
        x[0, space._R] = 0
        big_r = x.copy()
        big_r[0, space._R] = len(RESOLUTIONS) - 1
        assert space.macs(big_r)[0] > space.macs(x)[0]
        assert space.params(big_r)[0] == space.params(x)[0]


def test_costs_are_positive(space):
    X = space.sample(5, random_state=11)
    assert (space.macs(X) > 0).all() and (space.params(X) > 0).all()
    assert space.macs(X).shape == (5,)


# ------------------------------------------------------------------ NB201 specifics
def test_nb201_known_string():
    space = NB201Space()
    x = np.array([4, 2, 1, 2, 1, 1])
    assert space.to_string(x) == ARCH0
    np.testing.assert_array_equal(space.from_string(ARCH0), x)
    with pytest.raises(ValueError, match="3 nodes"):
        space.from_string("|none~0|")
    with pytest.raises(ValueError, match="bad edge"):
        space.from_string(ARCH0.replace("avg_pool_3x3", "max_pool"))


def test_nb201_is_degenerate():
    space = NB201Space()
    assert space.is_degenerate([[0] * 6])[0]
    assert not space.is_degenerate([[0, 0, 0, 1, 0, 0]])[0]  # direct 0 -> 3 edge
    assert not space.is_degenerate([[1, 0, 0, 0, 1, 0]])[0]  # 0 -> 1 -> 3
    assert space.is_degenerate([[1, 0, 0, 0, 0, 1]])[0]  # 0 -> 1, 2 -> 3: no path
    assert space.is_degenerate([[1, 0, 0, 0, 0, 0]])[0]  # 0 -> 1 dead end
    # Brute force over all cells: alive iff some path 0 -> 3 uses only non-none edges.
    X = space.enumerate()
    paths = [[3], [0, 4], [1, 5], [0, 2, 5]]  # edges of each input -> output path
    alive = np.zeros(len(X), dtype=bool)
    for p in paths:
        alive |= (X[:, p] != 0).all(axis=1)
    np.testing.assert_array_equal(space.is_degenerate(X), ~alive)


# ------------------------------------------------------------------ registry
@pytest.mark.parametrize(
    "name, expected",
    [
        ("nb201", NB201Space()),
        ("NASBench201", NB201Space()),
        ("nas_bench_201", NB201Space()),
        ("fbnet", FBNetSpace()),
        ("ofa", OFASpace()),
        ("ofa-quant", OFASpace(quantize=True)),
        ("OFA_Q", OFASpace(quantize=True)),
    ],
)
def test_get_space(name, expected):
    assert get_space(name) == expected
    assert isinstance(get_space(name), DesignSpace)


def test_get_space_errors_and_identity():
    with pytest.raises(ValueError, match="unknown design space 'darts'"):
        get_space("darts")
    space = OFASpace()
    assert get_space(space) is space
    assert OFASpace() != OFASpace(quantize=True)
    assert hash(NB201Space()) == hash(NB201Space())


# ------------------------------------------------------------------ real data
def test_nb201_all_cells_against_archs_csv(data_home):
    df = pd.read_csv(data_home / "nb201" / "archs.csv")
    space = NB201Space()
    X = df[space.choice_names].to_numpy(np.int64)
    assert len(df) == 15_625
    assert space.to_strings(X) == df["arch_str"].tolist()
    np.testing.assert_array_equal(space.from_strings(df["arch_str"].tolist()), X)
    idx = df["arch_idx"].to_numpy()
    np.testing.assert_array_equal(nb201_arch_idx(X, data_home=data_home), idx)
    np.testing.assert_array_equal(nb201_designs(idx, data_home=data_home), X)
    # The table covers the whole space exactly once.
    assert len(np.unique(X, axis=0)) == space.size
    with pytest.raises(ValueError, match="outside"):
        nb201_designs([15_625], data_home=data_home)


def test_nb201_degenerate_cells_in_data(data_home):
    df = pd.read_csv(data_home / "nb201" / "archs.csv")
    space = NB201Space()
    deg = space.is_degenerate(df[space.choice_names].to_numpy())
    # 341 cells have no input -> output path (every cell is in the table once).
    assert deg.sum() == 341
    # They train to chance level, and only they do on CIFAR-10.
    assert (df.loc[deg, "acc_cifar10"] == 10).all()
    assert (df.loc[~deg, "acc_cifar10"] > 10).all()
