"""Import the optional profiling dependencies (``pip install "skedge[profile]"``)."""

from __future__ import annotations

import importlib

# module -> the pip package that provides it
_PACKAGES = {"onnx": "onnx", "onnxruntime": "onnxruntime", "pynvml": "nvidia-ml-py"}


def optional_import(module, purpose):
    """Import an optional dependency, or fail with the pip command that installs it.

    Examples
    --------
    >>> from skedge.measure._optional import optional_import
    >>> optional_import("json", "reading JSON").__name__
    'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        package = _PACKAGES.get(module, module)
        raise ValueError(
            f"{purpose} needs the optional package {package!r}: pip install {package} "
            '(or pip install "skedge[profile]").'
        ) from None
