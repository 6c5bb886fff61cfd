"""Shared test fixtures: the real data home, skipped with a reason when absent."""

import os

import pytest

from skedge.datasets import get_data_home


def _data_home_or_skip():
    home = get_data_home()
    if (home / "nb201" / "archs.csv").is_file():
        return home
    msg = (
        f"real data not found at {home}: set SKEDGE_DATA to the folder holding "
        "nb201/, fbnet/, ofa/ and devices/ to run the real-data tests"
    )
    if os.environ.get("SKEDGE_REQUIRE_DATA"):
        pytest.fail(msg + " (SKEDGE_REQUIRE_DATA is set, as in CI)")
    pytest.skip(msg)


@pytest.fixture(scope="session")
def data_home():
    """Path of the real data home; skips the test when the data is absent."""
    return _data_home_or_skip()
