"""Design-side encoders: one-hot codes and learned embeddings of designs.

Both implement ``torch_transform(P)`` for soft designs (see :mod:`skedge.differentiable`).
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.cross_decomposition import PLSRegression
from sklearn.decomposition import PCA
from sklearn.preprocessing import OneHotEncoder
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from ..spaces import DesignSpace, get_space

__all__ = ["DesignEmbedding", "DesignOneHotEncoder"]


def _resolve_space(space):
    return None if space is None else get_space(space)


class DesignOneHotEncoder(TransformerMixin, BaseEstimator):
    """One-hot encode design index columns with the categories of a design space.

    The categories come from the space, not from the data, so a valid option
    never seen in training still encodes (to its own column), and an invalid
    index is rejected with the name of the column and value. Without a space,
    categories are learned from the data as in
    :class:`sklearn.preprocessing.OneHotEncoder` and unseen values encode to
    all zeros.

    Parameters
    ----------
    space : DesignSpace or str, default=None
        The design space (or its name, see :func:`skedge.spaces.get_space`).

    Attributes
    ----------
    categories_ : list of ndarray
        Option indices of each column.
    n_features_in_ : int

    Examples
    --------
    >>> from skedge.preprocessing import DesignOneHotEncoder
    >>> enc = DesignOneHotEncoder(space="nb201").fit([[0, 1, 2, 3, 4, 0]])
    >>> enc.transform([[4, 4, 4, 4, 4, 4]]).sum(), enc.transform([[0] * 6]).shape
    (np.float64(6.0), (1, 30))
    >>> enc.get_feature_names_out()[:2].tolist()
    ['e0=none', 'e0=skip_connect']
    """

    _parameter_constraints = {"space": [DesignSpace, str, None]}

    def __init__(self, *, space=None):
        self.space = space

    def _check(self, X, reset):
        space = _resolve_space(self.space)
        if space is None:
            return validate_data(self, X, reset=reset, dtype=np.float64)
        # Design indices are validated by the space (names the bad column/value).
        X = validate_data(self, X, reset=reset, dtype=None, ensure_all_finite=False)
        return space.validate(X)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fix the categories (from the space, or from ``X`` without one)."""
        X = self._check(X, reset=True)
        space = _resolve_space(self.space)
        categories = (
            [np.arange(k) for k in space.n_options] if space is not None else "auto"
        )
        # Without a space, an option never seen in fit encodes to all zeros.
        self.encoder_ = OneHotEncoder(
            categories=categories,
            sparse_output=False,
            dtype=np.float64,
            handle_unknown="error" if space is not None else "ignore",
        ).fit(X)
        self.categories_ = self.encoder_.categories_
        return self

    def transform(self, X):
        """One-hot encode designs; returns a dense float array."""
        check_is_fitted(self)
        return self.encoder_.transform(self._check(X, reset=False))

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self)
        space = _resolve_space(self.space)
        if space is None:
            return self.encoder_.get_feature_names_out(input_features)
        return np.array(
            [f"{c.name}={opt}" for c in space.choices for opt in c.options], dtype=object
        )

    def torch_transform(self, P):
        """Soft designs (probabilities laid out like the one-hot) pass through unchanged."""
        return P


class DesignEmbedding(TransformerMixin, BaseEstimator):
    """Learned linear low-dimensional embedding of designs.

    Designs are one-hot encoded with the space's categories, then projected:

    * with a target ``y`` (e.g. the standardized log-latency profile of each
      design over the training devices, shape ``(n_designs, n_devices)``, or
      accuracy), by partial least squares, so the components are the design
      directions that explain performance;
    * without ``y``, by PCA of the one-hot codes.

    The map is linear, so soft designs embed exactly the same way
    (:meth:`torch_transform`).

    Parameters
    ----------
    space : DesignSpace or str, default=None
        The design space; without one, categories are learned from the data.
    n_components : int, default=8
        Embedding width.

    Attributes
    ----------
    components_ : ndarray of shape (n_one_hot, n_components)
    offset_ : ndarray of shape (n_components,)
        ``embedding = one_hot @ components_ - offset_``.

    Examples
    --------
    >>> import numpy as np
    >>> from skedge.spaces import NB201Space
    >>> from skedge.preprocessing import DesignEmbedding
    >>> space = NB201Space(); X = space.sample(300, random_state=0)
    >>> y = (X == 3).sum(axis=1) + 0.1 * (X == 2).sum(axis=1)
    >>> emb = DesignEmbedding(space=space, n_components=2).fit(X, y)
    >>> emb.transform(X).shape, emb.get_feature_names_out().tolist()
    ((300, 2), ['designembedding0', 'designembedding1'])
    """

    _parameter_constraints = {
        "space": [DesignSpace, str, None],
        "n_components": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, *, space=None, n_components=8):
        self.space = space
        self.n_components = n_components

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the projection (PLS against ``y`` when given, PCA otherwise)."""
        self.encoder_ = DesignOneHotEncoder(space=self.space).fit(X)
        self.n_features_in_ = self.encoder_.n_features_in_
        if hasattr(self.encoder_, "feature_names_in_"):
            self.feature_names_in_ = self.encoder_.feature_names_in_
        H = self.encoder_.transform(X)
        k = min(self.n_components, H.shape[1], max(1, H.shape[0] - 1))
        if y is not None:
            Y = np.asarray(y, dtype=np.float64)
            Y = Y.reshape(len(Y), -1)
            pls = PLSRegression(n_components=k, scale=False).fit(H, Y)
            # PLS scores are (H - mean) @ x_rotations_.
            W, mean = pls.x_rotations_, pls._x_mean
        else:
            pca = PCA(n_components=k).fit(H)
            W, mean = pca.components_.T, pca.mean_
        self.components_ = W
        self.offset_ = mean @ W
        self.n_components_ = k
        return self

    def transform(self, X):
        check_is_fitted(self)
        return self.encoder_.transform(X) @ self.components_ - self.offset_

    def torch_transform(self, P):
        W = torch.as_tensor(self.components_, dtype=P.dtype)
        return P @ W - torch.as_tensor(self.offset_, dtype=P.dtype)

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self)
        return np.array([f"designembedding{i}" for i in range(self.n_components_)], dtype=object)
