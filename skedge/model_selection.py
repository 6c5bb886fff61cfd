"""Cross-validation over hardware: hold out every setting of one device at a time.

A predictor evaluated "on an unseen device" must not have seen the same
hardware at another batch size (``1080ti_1`` and ``1080ti_32``) or the same
hardware measured by another lab (``pixel3`` and ``rice_pixel3``).
:class:`LeaveOneHardwareOut` is a scikit-learn splitter over such hardware
groups (:func:`skedge.devices.hardware_groups`), so it works wherever a ``cv``
is accepted: ``cross_validate``, ``GridSearchCV``, ``cross_val_predict``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import LeaveOneGroupOut

from .devices import DEVICE_FEATURES, hardware_groups

__all__ = ["LeaveOneHardwareOut"]


class LeaveOneHardwareOut(LeaveOneGroupOut):
    """Leave out all device settings of one piece of hardware per split.

    ``groups`` holds the device-setting name of every row (as
    :func:`skedge.datasets.to_pairs` returns it). Settings are merged into one
    piece of hardware when their names differ only in a batch-size or thread
    suffix, or, given ``devices``, when their feature rows are equal apart
    from ``batch_size`` (see :func:`skedge.devices.hardware_groups`).

    Parameters
    ----------
    devices : pandas.DataFrame, default=None
        Device feature table indexed by setting name (e.g.
        ``bench.devices``). Without it, settings are grouped by name only.
    test_devices : list of str, default=None
        Only the splits whose held-out hardware contains one of these
        settings (all hardware when None). Their training side still excludes
        the whole hardware group.

    Examples
    --------
    >>> import numpy as np
    >>> from skedge.model_selection import LeaveOneHardwareOut
    >>> groups = np.array(["gpu_1", "gpu_32", "phone", "phone", "cpu"], dtype=object)
    >>> cv = LeaveOneHardwareOut()
    >>> cv.get_n_splits(groups=groups)
    3
    >>> [sorted(set(groups[test])) for _, test in cv.split(groups, groups=groups)]
    [['cpu'], ['gpu_1', 'gpu_32'], ['phone']]
    >>> cv.hardware_of(groups)["gpu_32"]
    'gpu_1'
    """

    def __init__(self, *, devices=None, test_devices=None):
        self.devices = devices
        self.test_devices = test_devices

    def hardware_of(self, groups):
        """``{setting name: hardware label}`` for the settings in ``groups``."""
        names = list(dict.fromkeys(map(str, np.asarray(groups, dtype=object))))
        if self.devices is not None:
            missing = [n for n in names if n not in self.devices.index]
            if missing:
                raise ValueError(
                    f"device {missing[0]!r} is not in the `devices` table of LeaveOneHardwareOut."
                )
            table = self.devices.loc[names, list(DEVICE_FEATURES)]
        else:
            # No features: every row is unique, so only the names can merge settings.
            table = pd.DataFrame(
                np.arange(len(names), dtype=np.float64)[:, None].repeat(len(DEVICE_FEATURES), 1),
                index=names, columns=list(DEVICE_FEATURES),
            )
        return hardware_groups(table)

    def _hardware_labels(self, groups):
        if groups is None:
            raise ValueError("LeaveOneHardwareOut needs `groups`: the device name of each row.")
        groups = np.asarray(groups, dtype=object).astype(str)
        of = self.hardware_of(groups)
        labels = np.array([of[g] for g in groups], dtype=object)
        if self.test_devices is not None:
            unknown = [d for d in self.test_devices if d not in of]
            if unknown:
                raise ValueError(f"unknown test device {unknown[0]!r}; known: {sorted(of)}.")
        return labels, of

    def _iter_test_masks(self, X, y, groups):
        labels, of = self._hardware_labels(groups)
        wanted = None if self.test_devices is None else {of[d] for d in self.test_devices}
        for label in sorted(set(labels)):
            if wanted is None or label in wanted:
                yield labels == label

    def get_n_splits(self, X=None, y=None, groups=None):
        """Number of hardware groups held out (those holding a test device, if given)."""
        labels, of = self._hardware_labels(groups)
        if self.test_devices is None:
            return len(set(labels))
        return len({of[d] for d in self.test_devices})

    def split(self, X, y=None, groups=None):
        """Yield ``(train, test)`` row indices, one split per held-out hardware group.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), default=None
        groups : array-like of shape (n_samples,)
            Device-setting name of each row.
        """
        return super().split(X, y, groups)
