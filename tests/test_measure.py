"""skedge measure: timing rows, resumable CSV, kill-safety, bad input, load_measurements."""

import gzip
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch

import skedge.models
from skedge import cli
from skedge.datasets import load_measurements, merge_benchmarks, to_pairs
from skedge.devices import DEVICE_FEATURES
from skedge.measure import (
    measure,
    measurement_columns,
    read_designs_file,
    read_measurement_file,
    time_model,
)
from skedge.spaces import NB201Space

# The cheapest NB201 networks: no convolutions inside the cells.
TINY = [[1] * 6, [0] * 6, [4, 0, 0, 1, 0, 0]]
FAST = dict(warmup=1, repeats=2, progress=False)


@pytest.fixture(autouse=True)
def no_data_home(monkeypatch, tmp_path):
    """Tests run as if no real data were installed, unless they ask for `data_home`."""
    monkeypatch.setenv("SKEDGE_DATA", str(tmp_path / "no_data_here"))


def _rows(path):
    return read_measurement_file(path)


def test_rows_have_every_column(tmp_path):
    out = tmp_path / "m.csv"
    threads_before = torch.get_num_threads()
    df = measure("nb201", out, designs=TINY, device_name="dev", threads=1, **FAST)
    assert torch.get_num_threads() == threads_before
    assert list(df.columns) == measurement_columns("nb201")
    assert len(df) == 3 and (df["status"] == "ok").all()
    assert (df["latency_ms"] > 0).all() and (df["latency_min_ms"] <= df["latency_ms"]).all()
    assert (df["latency_iqr_ms"] >= 0).all() and (df["latency_std_ms"] >= 0).all()
    assert (df["n_runs"] == 2).all() and (df["warmup"] == 1).all()
    assert (df["threads"] == 1).all() and (df["batch_size"] == 1).all()
    assert (df["device"] == "dev").all() and (df["space"] == "nb201").all()
    assert df[["e0", "e1", "e2", "e3", "e4", "e5"]].to_numpy().tolist() == TINY
    assert df["design_str"].tolist() == NB201Space().to_strings(TINY)
    assert df["design_id"].isna().all()  # no data home: arch_idx unknown
    assert df["reference_rank"].isna().all()
    assert df["kind"].notna().all() and (df["compute_units"] == 1).all()
    assert df["cpu_model"].notna().all() and df["torch_version"].eq(torch.__version__).all()
    assert np.isfinite(df["loadavg"]).all() and df["timestamp"].notna().all()
    # The file is plain CSV with one header and one line per row.
    lines = out.read_text().splitlines()
    assert len(lines) == 4 and lines[0].startswith("device,space,e0")


def test_time_model_restores_threads_and_validates():
    model = skedge.models.build_model("nb201", [1] * 6)
    before = torch.get_num_threads()
    times = time_model(model, warmup=0, repeats=3, threads=1, batch_size=2)
    assert times.shape == (3,) and (times > 0).all()
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="repeats"):
        time_model(model, repeats=0)


def test_resume_skips_done_designs_and_adds_settings(tmp_path, capsys):
    out = tmp_path / "m.csv"
    measure("nb201", out, designs=TINY[:2], device_name="a", **FAST)
    with pytest.raises(ValueError, match="already exists"):
        measure("nb201", out, designs=TINY, device_name="a", **FAST)
    first = out.read_text()
    df = measure("nb201", out, designs=TINY, device_name="a", resume=True, **FAST)
    assert out.read_text().startswith(first)  # appended, never rewritten
    assert len(df) == 3 and df["design_str"].is_unique
    # Nothing left to do: a second resume writes nothing.
    measure("nb201", out, designs=TINY, device_name="a", resume=True, **FAST)
    assert len(_rows(out)) == 3
    # Another device setting in the same file.
    df = measure("nb201", out, designs=TINY, device_name="b", resume=True, **FAST)
    assert df.groupby("device").size().to_dict() == {"a": 3, "b": 3}
    # Same name, other setting: refused before measuring.
    with pytest.raises(ValueError, match="threads"):
        measure("nb201", out, designs=TINY, device_name="a", threads=2, resume=True, **FAST)


def test_duplicates_are_measured_once(tmp_path):
    out = tmp_path / "m.csv"
    df = measure("nb201", out, designs=TINY + TINY[:1], device_name="a", **FAST)
    assert len(df) == 3


def test_sampled_designs_are_distinct_and_exclude_listed_ones():
    from skedge.measure._designs import _sample_unique

    space = NB201Space()
    listed = space.sample(2000, random_state=1)
    X = _sample_unique(space, 300, 0, exclude=listed)
    keys = {tuple(r) for r in X}
    assert len(keys) == 300 and not keys & {tuple(r) for r in listed}
    # NB201 is small: 5000 uniform draws hold duplicates, the sample none.
    assert len(np.unique(_sample_unique(space, 5000, 0), axis=0)) == 5000
    with pytest.raises(ValueError, match="exceeds"):
        _sample_unique(space, space.size, 0, exclude=listed[:1])


def test_resume_repairs_torn_last_line(tmp_path):
    out = tmp_path / "m.csv"
    measure("nb201", out, designs=TINY[:2], device_name="a", **FAST)
    full = out.read_text()
    last = full.splitlines()[-1]
    # A kill in the middle of writing the second row leaves half of it.
    out.write_text(full[: len(full) - len(last) - 1] + last[: len(last) // 2])
    df = measure("nb201", out, designs=TINY, device_name="a", resume=True, **FAST)
    assert len(df) == 3 and df["design_str"].is_unique
    assert out.read_text().endswith("\n")
    assert sorted(df[["e0", "e1", "e2", "e3", "e4", "e5"]].to_numpy().tolist()) == sorted(TINY)
    # A torn header (killed before the first row) is repaired too.
    out2 = tmp_path / "m2.csv"
    out2.write_text("device,space,e0,e1")
    df = measure("nb201", out2, designs=TINY[:1], device_name="a", resume=True, **FAST)
    assert len(df) == 1 and list(df.columns) == measurement_columns("nb201")


def test_gzipped_file_reads_like_the_plain_one_and_is_never_written(tmp_path):
    out = tmp_path / "m.csv"
    plain = measure("nb201", out, designs=TINY[:2], device_name="a", **FAST)
    packed = tmp_path / "m.csv.gz"
    packed.write_bytes(gzip.compress(out.read_bytes()))
    pd.testing.assert_frame_equal(read_measurement_file(packed).reset_index(drop=True),
                                  plain.reset_index(drop=True))
    assert load_measurements(packed, space="nb201").latency.shape == (2, 1)
    with pytest.raises(ValueError, match=r"m\.csv\.gz: measurements are written as plain CSV"):
        measure("nb201", packed, designs=TINY[:1], device_name="a", resume=True, **FAST)
    assert gzip.decompress(packed.read_bytes()) == out.read_bytes()  # untouched


def test_killed_subprocess_then_resume_keeps_every_design_once(tmp_path):
    out = tmp_path / "killed.csv"
    designs = NB201Space().sample(24, random_state=3)
    np.save(tmp_path / "designs.npy", designs)
    code = (
        "import numpy as np, torch\n"
        "from skedge.measure import measure\n"
        f"X = np.load({str(tmp_path / 'designs.npy')!r})\n"
        f"measure('nb201', {str(out)!r}, designs=X, device_name='k', warmup=0, repeats=3,"
        " progress=False)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if out.exists() and out.read_bytes().count(b"\n") >= 4:  # header + 3 rows
                break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.002)
        assert proc.poll() is None, "the run finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    killed = _rows(out)
    assert 3 <= len(killed) < 24
    df = measure("nb201", out, designs=designs, device_name="k", resume=True, warmup=0,
                 repeats=1, progress=False)
    keys = [tuple(r) for r in df[[f"e{i}" for i in range(6)]].to_numpy()]
    assert len(keys) == len(set(keys)) == len(np.unique(designs, axis=0))
    assert set(keys) == {tuple(r) for r in designs}
    assert (df["status"] == "ok").all()
    # Rows written before the kill are kept as they were.
    assert df.iloc[: len(killed)]["timestamp"].tolist() == killed["timestamp"].tolist()


def test_bad_input_fails_before_measuring(tmp_path, forbid_measuring):
    out = tmp_path / "m.csv"
    with pytest.raises(ValueError, match="unknown design space"):
        measure("nb301", out, designs=TINY, **FAST)
    with pytest.raises(ValueError, match="e1"):
        measure("nb201", out, designs=[[1, 7, 1, 1, 1, 1]], **FAST)
    with pytest.raises(ValueError, match="either designs or n"):
        measure("nb201", out, designs=TINY, n=3, **FAST)
    with pytest.raises(ValueError, match="nothing to measure"):
        measure("nb201", out, **FAST)
    with pytest.raises(ValueError, match="repeats"):
        measure("nb201", out, designs=TINY, warmup=1, repeats=0, progress=False)
    with pytest.raises(ValueError, match="threads"):
        measure("nb201", out, designs=TINY, threads=0, **FAST)
    # The reference designs need the data home (absent here).
    with pytest.raises(FileNotFoundError, match="reference_archs.json"):
        measure("nb201", out, n=2, include_reference=True, **FAST)
    assert not out.exists()

    # An existing file of another space, or without the columns: untouched.
    other = tmp_path / "fbnet.csv"
    cols = measurement_columns("fbnet")
    row = {c: "" for c in cols} | {"device": "x", "space": "fbnet", "status": "ok"}
    row |= {f"b{i}": 0 for i in range(22)}
    pd.DataFrame([row], columns=cols).to_csv(other, index=False)
    before = other.read_bytes()
    with pytest.raises(ValueError, match="'fbnet', not 'nb201'"):
        measure("nb201", other, designs=TINY, resume=True, **FAST)
    foreign = tmp_path / "foreign.csv"
    foreign.write_text("device,space,e0\nx,nb201,1\n")
    with pytest.raises(ValueError, match="lacks the measurement columns"):
        measure("nb201", foreign, designs=TINY, resume=True, **FAST)
    torn_foreign = tmp_path / "torn_foreign.csv"
    torn_foreign.write_text("hello")
    with pytest.raises(ValueError, match="not a skedge measurement file"):
        measure("nb201", torn_foreign, designs=TINY, resume=True, **FAST)
    assert other.read_bytes() == before and torn_foreign.read_text() == "hello"
    assert forbid_measuring == []


def test_failing_design_is_recorded_and_run_goes_on(tmp_path, monkeypatch):
    real = skedge.models.build_model

    def flaky(space, x, **kwargs):
        if list(x) == [0] * 6:
            raise RuntimeError("cannot build\nthis one")
        return real(space, x, **kwargs)

    monkeypatch.setattr(skedge.models, "build_model", flaky)
    out = tmp_path / "m.csv"
    df = measure("nb201", out, designs=TINY, device_name="a", **FAST)
    assert df["status"].tolist() == ["ok", "failed", "ok"]
    failed = df.iloc[1]
    assert failed["error"] == "RuntimeError: cannot build this one"
    assert np.isnan(failed["latency_ms"]) and failed["n_runs"] == 0
    bench = load_measurements(out)
    assert len(bench.designs) == 2  # the failed design has no latency anywhere
    assert len(bench.frame) == 3


def test_load_measurements_round_trip(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    measure("nb201", a, designs=TINY, device_name="t1", threads=1, **FAST)
    measure("nb201", a, designs=TINY[:2], device_name="t1_b2", batch_size=2, resume=True, **FAST)
    measure("nb201", b, designs=[[3] * 6], device_name="other", **FAST)
    bench = load_measurements([a, b])
    assert bench.space == NB201Space()
    assert bench.designs.tolist() == TINY + [[3] * 6]
    assert list(bench.latency.columns) == ["t1", "t1_b2", "other"]
    assert list(bench.devices.index) == ["t1", "t1_b2", "other"]
    assert list(bench.devices.columns) == list(DEVICE_FEATURES)
    assert bench.devices.loc["t1_b2", "batch_size"] == 2
    rows = read_measurement_file(a)
    t1 = rows[rows["device"] == "t1"]["latency_ms"].to_numpy()
    np.testing.assert_allclose(bench.latency["t1"].to_numpy()[:3], t1)
    assert np.isnan(bench.latency["t1_b2"].iloc[2]) and np.isnan(bench.latency["other"].iloc[0])
    assert bench.accuracy is None and bench.energy is None
    assert bench.reference_idx.tolist() == [] and (bench.design_ids == -1).all()
    _, y, groups = to_pairs(bench)
    assert len(y) == 3 + 2 + 1 and set(groups) == {"t1", "t1_b2", "other"}

    with pytest.raises(ValueError, match="space"):
        load_measurements(a, space="fbnet")
    with pytest.raises(ValueError, match="two measurements"):
        load_measurements([a, a])


def test_cli_and_designs_files(tmp_path, monkeypatch, capsys):
    assert "skedge._cli.measure" in cli.COMMAND_MODULES
    # Run the measure sub-command alone, independent of the other modules.
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("skedge._cli.measure",))
    space = NB201Space()
    lines = tmp_path / "designs.txt"
    lines.write_text("\n".join(space.to_strings(TINY)) + "\n")
    out = tmp_path / "cli.csv"
    argv = ["measure", "--space", "nb201", "--designs", str(lines), "--out", str(out),
            "--warmup", "1", "--repeats", "2", "--device-name", "cli", "--threads", "1"]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    assert "[3/3] cli" in captured.err and "cli: 3 ok, 0 failed" in captured.out
    assert len(_rows(out)) == 3
    # Existing file without --resume: a clear error, exit status 2.
    assert cli.main(argv) == 2
    assert "already exists" in capsys.readouterr().err
    assert cli.main(argv + ["--resume", "--quiet"]) == 0
    assert len(_rows(out)) == 3
    assert cli.main(["measure", "--space", "nb999", "--n", "2", "--out", str(tmp_path / "x")]) == 2
    assert "unknown design space" in capsys.readouterr().err
    # Sampling from the CLI.
    out2 = tmp_path / "sampled.csv"
    assert cli.main(["measure", "--space", "nb201", "--n", "2", "--out", str(out2), "--warmup",
                     "0", "--repeats", "1", "--quiet", "--random-state", "1"]) == 0
    assert len(_rows(out2)) == 2

    # Other designs-file forms give the same designs.
    values = tmp_path / "values.csv"
    pd.DataFrame(space.to_dicts(TINY)).to_csv(values, index=False)
    index = tmp_path / "index.csv"
    pd.DataFrame(TINY, columns=space.choice_names).to_csv(index, index=False)
    strings = tmp_path / "strings.csv"
    pd.DataFrame({"arch_str": space.to_strings(TINY), "x": 1}).to_csv(strings, index=False)
    for path in (lines, values, index, strings, out):
        assert read_designs_file(path, space).tolist() == TINY
    bad = tmp_path / "bad.txt"
    bad.write_text("hello\n")
    with pytest.raises(ValueError, match="cannot read designs"):
        read_designs_file(bad, space)


@pytest.mark.realdata
def test_reference_designs_and_merge_with_real_data(tmp_path, data_home, monkeypatch):
    monkeypatch.setenv("SKEDGE_DATA", str(data_home))
    from skedge.datasets import load_nb201, load_reference_designs

    out = tmp_path / "ref.csv"
    df = measure("nb201", out, n=2, include_reference=True, random_state=0, device_name="mine",
                 data_home=data_home, warmup=0, repeats=1, progress=False)
    refs, ref_ids = load_reference_designs("nb201", data_home=data_home, return_ids=True)
    assert len(df) == 12
    assert df["reference_rank"].iloc[:10].tolist() == list(range(10))
    assert df["design_id"].iloc[:10].astype(int).tolist() == ref_ids.tolist()
    assert df["design_id"].notna().all()  # arch_idx of the sampled designs too
    bench = load_measurements(out)
    assert bench.designs[bench.reference_idx].tolist() == refs.tolist()
    merged = merge_benchmarks(load_nb201(data_home=data_home), bench)
    assert "mine" in merged.latency.columns and merged.latency["mine"].notna().sum() == 12
    pos = merged.latency.index.get_indexer(ref_ids)
    np.testing.assert_allclose(merged.latency["mine"].to_numpy()[pos], bench.latency["mine"][:10])
