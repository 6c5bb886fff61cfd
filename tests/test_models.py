"""Design -> torch network: shapes, MAC/weight agreement with the cost model, int8."""

import numpy as np
import pytest
import torch
from torch import nn

from skedge.models import NB201Cell, build_model, count_macs_params
from skedge.spaces import DesignSpace, FBNetSpace, NB201Space, OFASpace
from skedge.spaces._base import Choice

SPACES = [NB201Space(), OFASpace(), OFASpace(quantize=True), FBNetSpace()]


@pytest.fixture(autouse=True)
def one_thread():
    # Several intra-op threads on a shared, busy CPU run tens of times slower.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.mark.parametrize("space", SPACES, ids=repr)
def test_forward_shape_and_counts_match_cost_model(space):
    for x in space.sample(3, random_state=7):
        model = build_model(space, x)
        n_classes = 10 if space.name == "nb201" else 1000
        with torch.inference_mode():
            y = model(torch.randn(2, *model.input_shape))
        assert y.shape == (2, n_classes)
        assert torch.isfinite(y).all()
        assert model.design == tuple(int(v) for v in space.canonicalize(x[None])[0])
        macs, params = count_macs_params(model)
        assert macs == int(space.macs([x])[0])
        assert params == int(space.params([x])[0])


def test_ofa_extremes_and_resolution():
    space = OFASpace()
    base = {f"ks{i}": 7 for i in range(20)} | {f"e{i}": 6 for i in range(20)}
    big = space.from_dicts([base | {f"d{s}": 4 for s in range(5)} | {"r": 224}])[0]
    small = space.from_dicts([base | {f"d{s}": 2 for s in range(5)} | {"r": 128}])[0]
    for x, r in [(big, 224), (small, 128)]:
        model = build_model(space, x)
        assert model.input_shape == (3, r, r)
        assert count_macs_params(model) == (int(space.macs([x])[0]), int(space.params([x])[0]))
    # The largest OFA-MobileNetV3 subnet has about 7.7 M parameters (incl. BN, biases).
    n = sum(p.numel() for p in build_model(space, big).parameters())
    assert 7.5e6 < n < 7.8e6


def test_nb201_known_size():
    # NATS-Bench lists 1.53 MB of parameters for the all-nor_conv_3x3 cell on CIFAR-10.
    n = sum(p.numel() for p in build_model("nb201", [3] * 6).parameters())
    assert 1.52e6 < n < 1.54e6


def test_nb201_none_edges_and_degenerate_cells():
    space = NB201Space()
    for x in ([0] * 6, [1, 0, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0]):
        model = build_model(space, x)
        with torch.inference_mode():
            y = model(torch.randn(2, 3, 32, 32))
        assert y.shape == (2, 10) and torch.isfinite(y).all()
        assert count_macs_params(model)[0] == int(space.macs([x])[0])
        cell = NB201Cell(np.asarray(x), 4)
        out = cell(torch.randn(1, 4, 6, 6))
        degenerate = bool(space.is_degenerate([x])[0])
        assert bool((out == 0).all()) == degenerate


def test_nb201_cell_wiring():
    # skip on every edge: node1 = x, node2 = 2x, node3 = x + x + 2x = 4x.
    cell = NB201Cell(np.ones(6, dtype=int), 3)
    x = torch.randn(1, 3, 5, 5)
    assert torch.allclose(cell(x), 4 * x)


def test_string_design_num_classes_and_seed():
    space = FBNetSpace()
    x = space.sample(1, random_state=0)[0]
    a = build_model(space, space.to_string(x), num_classes=7, random_state=3)
    b = build_model(space, x, num_classes=7, random_state=3)
    inp = torch.randn(1, *a.input_shape)
    with torch.inference_mode():
        assert a(inp).shape == (1, 7)
        assert torch.equal(a(inp), b(inp))


def test_quantized_space_bits_are_metadata():
    space = OFASpace(quantize=True)
    x = space.sample(1, random_state=1)[0]
    model = build_model(space, x)
    d = space.to_dicts([x])[0]
    active = np.flatnonzero(space.active_blocks(x[None])[0])
    assert sorted(model.block_bits) == active.tolist()
    for b in active:
        assert model.block_bits[b] == (d[f"wb{b}"], d[f"ab{b}"])
    # Same network as the float space apart from the metadata.
    plain = OFASpace()
    x_plain = x[: plain.n_choices]
    assert count_macs_params(model) == count_macs_params(build_model(plain, x_plain))


@pytest.mark.parametrize("space", [NB201Space(), OFASpace(quantize=True), FBNetSpace()], ids=repr)
def test_int8_quantization_runs(space):
    x = space.sample(1, random_state=2)[0]
    if space.name == "ofa":
        x[space._R] = 0  # 128 px keeps the calibration quick
    model = build_model(space, x, quantize="int8")
    assert model.quantized == "int8"
    kinds = {type(m).__module__ for m in model.modules()}
    assert any(k.startswith("torch.ao.nn.quantized") or ".quantized." in k for k in kinds)
    with torch.inference_mode():
        y = model(torch.randn(1, *model.input_shape))
    assert y.shape[0] == 1 and torch.isfinite(y).all()
    if space.name == "ofa":
        assert model.block_bits  # the searched bit-widths travel along as metadata


def test_bad_inputs():
    with pytest.raises(ValueError, match="quantize"):
        build_model("nb201", [1] * 6, quantize="int4")
    with pytest.raises(ValueError, match="e2"):
        build_model("nb201", [1, 1, 9, 1, 1, 1])
    with pytest.raises(ValueError, match="one design"):
        build_model("nb201", [[1] * 6, [2] * 6])

    class Toy(DesignSpace):
        name = "toy"

    with pytest.raises(ValueError, match="no network builder"):
        build_model(Toy([Choice("a", (1, 2))]), [0])


def test_count_macs_params_counts_weights_only():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.Flatten(),
                          nn.Linear(8 * 4 * 4, 5))
    macs, params = count_macs_params(model, input_shape=(3, 4, 4))
    assert params == 8 * 3 * 9 + 128 * 5
    assert macs == 8 * 3 * 9 * 16 + 128 * 5
