"""The workflow's data: a benchmark, its unseen devices, and the truth of any design.

:func:`simulated_data` runs the simulator (:func:`~skedge.datasets.make_edge_benchmark`)
and holds out one device per family; :func:`nb201_data` reads the real
NAS-Bench-201 data (:func:`~skedge.datasets.load_nb201`, ``data_home``) and
holds out the unseen devices with their whole hardware group. Both return a
Bunch: ``bench``, ``space``, ``train_designs``, ``train_devices``,
``test_devices``, ``truth(designs, devices)``, ``family``, ``source``,
``has_energy`` and ``description``.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils import Bunch, check_random_state

from ..datasets import (
    floor_latency,
    load_nb201,
    make_edge_benchmark,
    simulated_truth,
    to_pairs,
)
from ..devices import hardware_groups
from ..spaces import get_space
from ._checks import check_names, check_split
from ._summary import kind_name

__all__ = ["nb201_data", "simulated_data", "train_view"]

# Unseen devices of the simulator: one per family, in this order (varied kinds first).
_TEST_FAMILY_ORDER = ("phone_big_cpu", "edge_gpu", "npu", "desktop_cpu", "phone_dsp",
                      "phone_gpu", "board_cpu", "desktop_gpu", "fpga_bitserial",
                      "phone_little_cpu")
# Unseen devices of the real NAS-Bench-201 job (HELP settings), in this order.
_NB201_TEST_DEVICES = ("pixel3", "gold_6240", "titanx_1", "samsung_s7", "2080ti_32",
                       "silver_4210r")


def simulated_data(space, n_designs, n_devices, test, random_state):
    """Simulator benchmark, unseen devices, and the truth function of any design."""
    bench = make_edge_benchmark(space, n_designs=n_designs, n_devices=n_devices,
                                random_state=random_state)
    names = list(bench.latency.columns)
    if isinstance(test, list):
        check_names(test, names)
        tests = test
    else:
        rng = check_random_state(random_state)
        counts = bench.family.value_counts()
        # Families with a device left for training first: an unseen device, not an unseen family.
        order = ([f for f in _TEST_FAMILY_ORDER if counts.get(f, 0) >= 2]
                 + [f for f in _TEST_FAMILY_ORDER if counts.get(f, 0) == 1])
        if test > len(order):
            raise ValueError(
                f"--test-devices {test}: the unseen devices are one per device family, and "
                f"this benchmark has {len(order)} families; ask for at most {len(order)} or "
                "name the devices."
            )
        tests = []
        for fam in order[:test]:
            members = list(bench.family.index[bench.family == fam])
            tests.append(members[rng.randint(len(members))])
    check_split(tests, names)
    train = [d for d in names if d not in tests]

    def truth(designs, devices):
        """Noise-free simulated accuracy, latency and energy of designs[i] on devices[i]."""
        return simulated_truth(bench, designs, devices)

    family = {d: bench.family[d] for d in names}
    return Bunch(bench=bench, space=bench.space, train_designs=np.arange(len(bench.designs)),
                 train_devices=train, test_devices=tests, truth=truth, family=family,
                 source="simulator", has_energy=True,
                 description=f"simulated benchmark: {len(bench.designs)} designs x "
                             f"{len(names)} devices ({bench.family.nunique()} families)")


def nb201_data(space, data_home, n_designs, test, random_state):
    """Real NAS-Bench-201 (HELP latencies): unseen devices held out with their hardware group."""
    if get_space(space).name != "nb201":
        raise ValueError(
            f"--data-home runs on the real NAS-Bench-201 data: use --space nb201, not {space!r} "
            "(the real FBNet/OFA data have no accuracies)."
        )
    bench = load_nb201(sources=("help",), data_home=data_home)
    # Degenerate cells read ~0 ms on some devices; floor each device at its 1st percentile.
    bench.latency = floor_latency(bench.latency)
    names = list(bench.latency.columns)
    if isinstance(test, list):
        check_names(test, names)
        tests = test
    else:
        tests = [d for d in _NB201_TEST_DEVICES if d in names]
        if test > len(tests):
            raise ValueError(
                f"--test-devices {test}: the real-data run holds out at most {len(tests)} "
                f"devices by number ({', '.join(tests)}); name others to hold out more."
            )
        tests = tests[:test]
    check_split(tests, names)
    groups = hardware_groups(bench.devices.loc[names])
    held = {groups[d] for d in tests}
    train = [d for d in names if groups[d] not in held]
    if len(train) < len(tests):
        raise ValueError(
            f"--test-devices: holding out {tests} with their hardware groups leaves "
            f"{len(train)} training device(s); hold out fewer."
        )
    n = len(bench.designs)
    if n_designs < 1:
        raise ValueError(f"--n-designs must be a positive integer, got {n_designs}.")
    rng = check_random_state(random_state)
    rows = np.sort(rng.choice(n, size=min(n_designs, n), replace=False))
    position = {row.tobytes(): i for i, row in enumerate(bench.designs)}
    latency = bench.latency.to_numpy()

    def truth(designs, devices):
        """Measured accuracy and (floored) latency of designs[i] on devices[i]."""
        idx = np.array([position[np.asarray(x, dtype=np.int64).tobytes()] for x in designs])
        cols = bench.latency.columns.get_indexer(devices)
        return {"accuracy": bench.accuracy[idx], "latency": latency[idx, cols]}

    family = {d: kind_name(bench.devices.loc[d, "kind"]) for d in names}
    return Bunch(bench=bench, space=bench.space, train_designs=rows, train_devices=train,
                 test_devices=tests, truth=truth, family=family, source="nb201",
                 has_energy=False,
                 description=f"NAS-Bench-201 (CIFAR-10 accuracy, HELP latencies): {n} cells x "
                             f"{len(names)} device settings; {len(train)} settings train "
                             f"(whole hardware groups of the unseen devices held out)")


def train_view(data, target):
    """Pair table of the training designs on the training devices."""
    b = data.bench
    view = Bunch(space=b.space, designs=b.designs[data.train_designs],
                 devices=b.devices, latency=b.latency.iloc[data.train_designs],
                 energy=None if b.get("energy") is None else b.energy.iloc[data.train_designs])
    return to_pairs(view, devices=data.train_devices, target=target)
