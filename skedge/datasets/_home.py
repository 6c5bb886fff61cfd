"""Where skedge finds the real measured data (never shipped with the package)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["data_file", "get_data_home"]

ENV_VAR = "SKEDGE_DATA"


def get_data_home(data_home=None):
    """Resolve the folder that holds skedge's real data files.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Explicit folder. When None, the ``SKEDGE_DATA`` environment variable is
        used, then ``~/skedge_data``.

    Returns
    -------
    path : pathlib.Path
        The folder (it is not created and may not exist).

    Examples
    --------
    >>> from skedge.datasets import get_data_home
    >>> str(get_data_home("/tmp/data"))
    '/tmp/data'
    """
    if data_home is None:
        data_home = os.environ.get(ENV_VAR) or Path("~") / "skedge_data"
    return Path(data_home).expanduser()


def data_file(relpath, data_home=None):
    """Path of one data file, or a ``FileNotFoundError`` that says what is expected where."""
    home = get_data_home(data_home)
    path = home / relpath
    if not path.is_file():
        where = (
            "the data_home argument"
            if data_home is not None
            else f"the {ENV_VAR} environment variable (or ~/skedge_data)"
        )
        problem = "does not exist" if not home.is_dir() else f"has no file {relpath!r}"
        raise FileNotFoundError(
            f"skedge expected the data file {path} but the data folder {home} "
            f"{problem}. Point {where} at the folder that holds nb201/, fbnet/, ofa/, "
            "devices/ and reference_archs.json (see the skedge README, 'Real data')."
        )
    return path
