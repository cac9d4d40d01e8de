"""Influence functions of fitted scikit-learn linear models: ``oa.influence`` and friends.

The influence of training point ``i`` on test point ``t`` is the first-order prediction of
how much the test loss would *increase* if ``i`` were removed and the model refitted
(Cook & Weisberg 1982; Koh & Liang 2017, eq. 2):

.. math::

    I(i, t) = \\nabla_\\theta \\ell(z_t)^\\top H^{-1} \\nabla_\\theta\\, w_i \\ell(z_i),
    \\qquad H = \\nabla^2_\\theta F(\\hat\\theta),

with ``F`` the exact objective scikit-learn minimised (see
:mod:`openattrib.influence.sklearn_models`). Positive = the point helps the prediction.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._vocab import check_players, deprecated_keywords
from ..data import Dataset
from ..errors import ValidationError
from ..result import Attribution, make_provenance
from .prepared import Prepared, as_rows, check_dataset, prepare, query_gradients
from .result import InfluenceResult
from .torch_models import is_torch_module

__all__ = ["influence", "attribute_prediction", "point_influence"]


# ------------------------------------------------------------------ public API
def influence(
    model: Any,
    train: Dataset,
    test: Any,
    *,
    method: str = "direct",
    damping: float = 0.0,
    memory_budget: int | str | None = None,
    cg_tol: float = 1e-10,
    cg_maxiter: int | None = None,
    lissa_scale: float | None = None,
    lissa_depth: int = 10_000,
    lissa_tol: float = 1e-9,
    lissa_batch_size: int | None = None,
    lissa_repeats: int = 1,
    seed: int = 0,
    **torch_options: Any,
) -> InfluenceResult:
    """Influence of every training point on every test point of a fitted linear model.

    A ``torch.nn.Module`` goes to ``openattrib.influence.neural.neural_influence``
    (methods ``"ekfac"``, ``"datainf"``, ``"trak"``, ``"tracin"``, ``"identity"``; options
    such as ``loss=`` and ``projection_dim=`` are passed on).

    Parameters
    ----------
    model : fitted LogisticRegression, Ridge or LinearRegression (or a Pipeline ending in one)
        Fitted on exactly ``train`` (same rows, no ``sample_weight``); L2 penalty or none.
    train : Dataset
    test : Dataset or array-like
        A Dataset explains the test *loss* at its labels; a feature array explains the
        model's own predictions (see ``query_gradients``).
    method : {"direct", "cg", "lissa"}
        ``"direct"``: Cholesky of the dense Hessian (``K p`` up to a few thousand).
        ``"cg"``, ``"lissa"``: matrix-free Hessian-vector products (many features).
    damping : float
        Added to the Hessian of the *average* training loss (``H / W + damping I``); needed
        when the objective has no L2 penalty and the Hessian is singular. Without it,
        ``"direct"`` refuses a singular Hessian (ValidationError suggesting damping);
        ``"cg"`` and ``"lissa"`` return the pseudo-inverse solution when the gradients lie
        in the Hessian's range (e.g. duplicated features) and raise when they do not
        converge.
    memory_budget : int or str, optional
        Bytes (or a string like ``"256MB"``) per block of intermediate results when rows
        are computed; default 256 MiB.
    cg_tol, cg_maxiter, lissa_scale, lissa_depth, lissa_tol, lissa_batch_size, lissa_repeats
        Solver options (see ``openattrib.influence.solvers``).
    seed : int, default 0
        Seeds LiSSA's mini-batches and power iteration; recorded in every attribution.

    Returns
    -------
    InfluenceResult
        ``S[t, i]`` > 0 when point ``i`` helps test point ``t`` (removing ``i`` would raise
        the test loss by about ``S[t, i]``).

    Examples
    --------
    >>> import openattrib as oa
    >>> from sklearn.linear_model import LogisticRegression
    >>> train, test = oa.datasets.load_iris().split(test_size=0.2, seed=0)
    >>> model = LogisticRegression(max_iter=1000).fit(train.X, train.y)
    >>> result = oa.influence(model, train, test)
    >>> result.shape
    (30, 120)
    >>> top = result.top(0, k=3)  # the three training points that help test point 0 most
    """
    if is_torch_module(model):
        from .neural import neural_influence

        if method == "direct":
            method = "ekfac"
        damping_option = None if damping == 0.0 else damping
        return neural_influence(
            model,
            train,
            test,
            method=method,
            damping=torch_options.pop("damping", damping_option),
            memory_budget=memory_budget,
            seed=seed,
            **torch_options,
        )
    if torch_options:
        raise ValidationError(
            f"unexpected option(s) {sorted(torch_options)} for a scikit-learn model "
            "(they apply to torch modules)"
        )
    prepared = prepare(
        model,
        train,
        method=method,
        damping=damping,
        cg_tol=cg_tol,
        cg_maxiter=cg_maxiter,
        lissa_scale=lissa_scale,
        lissa_depth=lissa_depth,
        lissa_tol=lissa_tol,
        lissa_batch_size=lissa_batch_size,
        lissa_repeats=lissa_repeats,
        seed=seed,
    )
    if isinstance(test, Dataset):
        gradients, target = query_gradients(prepared, test.X, test.y)
        test_hash = test.content_hash()
    else:
        gradients, target = query_gradients(prepared, as_rows(test, "test"), None)
        test_hash = None
    query = prepared.solver.solve(gradients.T).T
    provenance = make_provenance(
        dataset_hash=train.content_hash(),
        test_dataset_hash=test_hash,
        model=prepared.glm.description,
    )
    return InfluenceResult(
        query,
        prepared.contract,
        train.n_samples,
        self_influence=prepared.self_influence,
        train_names=prepared.names,
        contributors=train.contributors,
        method=f"influence-{method}",
        parameters={**prepared.parameters, "target": target},
        provenance=provenance,
        diagnostics={**prepared.diagnostics, **getattr(prepared.solver, "diagnostics", {})},
        memory_budget=memory_budget,
        seed=seed,
        work_per_entry=prepared.glm.n_outputs,
    )


def point_influence(prepared: Prepared, x: Any, y: Any = None) -> tuple[np.ndarray, str]:
    """Influence of each training point on one query row (used by the per-request API)."""
    X = as_rows(x)
    if X.shape[0] != 1:
        raise ValidationError(f"x must be a single row of features, got {X.shape[0]} rows")
    gradients, target = query_gradients(prepared, X, None if y is None else [y])
    query = prepared.solver.solve(gradients.T).T
    return prepared.contract(query, slice(None))[0], target


@deprecated_keywords(level="players")
def attribute_prediction(
    model: Any,
    train: Dataset,
    x: Any,
    *,
    y: Any = None,
    players: str = "contributors",
    method: str = "direct",
    damping: float = 0.0,
    **solver_options: Any,
) -> Attribution | InfluenceResult:
    """Which contributors (or training points) are behind one prediction of a deployed model.

    The Hessian factorisation is cached per ``(model parameters, train, method, damping)``,
    so after the first call each request costs one triangular solve and one pass over the
    training features (``O(p^2 + n p)``).

    Parameters
    ----------
    model : fitted supported model (see :func:`influence`)
    train : Dataset
        The training set the model was fitted on, with contributors for
        ``players="contributors"``.
    x : array-like of shape (n_features,) or (1, n_features)
    y : label, optional
        Explain the loss at this label; default: the predicted class (classification) or
        the predicted value (regression).
    players : {"contributors", "points"}
        ``"contributors"`` sums point influences per contributor (``by_contributor()``).
        Formerly ``level=`` (deprecated).
    method, damping, **solver_options
        As for :func:`influence`.

    Returns
    -------
    Attribution
        Positive = the contributor's data supports this prediction.

    Examples
    --------
    >>> import openattrib as oa
    >>> from sklearn.linear_model import LogisticRegression
    >>> train, valid = oa.datasets.load_demo()
    >>> model = LogisticRegression(max_iter=1000).fit(train.X, train.y)
    >>> result = oa.attribute_prediction(model, train, valid.X[0])
    >>> sorted(result.ranking()) == sorted(train.contributor_ids)  # every contributor ranked
    True

    For a torch causal language model, ``x`` is the prompt and ``y`` the completion (token
    ids) and the result is the per-test result of
    ``openattrib.influence.neural.attribute_generation`` (row 0: the completion, then
    one row per token).
    """
    if is_torch_module(model):
        from .neural import attribute_generation

        if y is None:
            raise ValidationError(
                "attribute_prediction on a torch language model needs y= (the completion's "
                "token ids) beside x (the prompt's)"
            )
        if method == "direct":
            method = "ekfac"
        return attribute_generation(
            model,
            train,
            x,
            y,
            method=method,
            damping=None if damping == 0.0 else damping,
            **solver_options,
        )
    players = check_players(players)
    train = check_dataset(train, "train")
    if players == "contributors" and train.contributors is None:
        raise ValidationError(
            "train has no contributors, so there is no contributor-level attribution; add "
            "them (oa.datasets.partition, Dataset(..., contributors=...)) or pass players='points'"
        )
    prepared = prepare(model, train, method=method, damping=damping, **solver_options)
    values, target = point_influence(prepared, x, y)
    points = Attribution(
        values,
        prepared.names,
        method=f"influence-{method}",
        parameters={**prepared.parameters, "target": target},
        provenance=make_provenance(
            dataset_hash=train.content_hash(), model=prepared.glm.description
        ),
        players="points",
        contributors=train.contributors,
        diagnostics=prepared.diagnostics,
    )
    return points.by_contributor() if players == "contributors" else points
