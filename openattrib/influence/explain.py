"""Feature attribution beside data attribution for one prediction: ``oa.explain_prediction``.

The feature side is SHAP (Lundberg & Lee 2017) computed by the ``shap`` library's
``LinearExplainer`` with an independent masker over training rows (for a linear model this
is ``coef_j * (x_j - mean_j)``); the data side is the influence of each training point and
contributor (:func:`openattrib.attribute_prediction`).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data import Dataset
from ..result import Attribution, make_provenance
from .api import point_influence
from .prepared import as_rows, check_dataset, prepare
from .sklearn_models import split_pipeline

__all__ = ["PredictionExplanation", "explain_prediction"]


@dataclass(frozen=True)
class PredictionExplanation:
    """One prediction, the features behind it and the training data behind it.

    Attributes
    ----------
    prediction : object
        The model's prediction for ``x``.
    probability : float or None
        Predicted probability of the explained class (classifiers).
    explained : str
        What both sides explain (the class whose log-odds/loss, or the predicted value).
    features : Attribution
        SHAP values (level ``"players"``, one per model input feature); their sum plus
        ``features.diagnostics["base_value"]`` is the explained model output.
    points : Attribution
        Influence of every training point (positive = supports the prediction).
    contributors : Attribution or None
        ``points.by_contributor()`` when the training set has contributors.
    feature_values : ndarray
        The explained row as the model sees it (after any pipeline preprocessing).
    train_labels : ndarray
        Labels of the training points (for display).
    top : int
        How many rows ``_repr_html_`` shows per table.
    """

    prediction: Any
    probability: float | None
    explained: str
    features: Attribution
    points: Attribution
    contributors: Attribution | None
    feature_values: np.ndarray
    train_labels: np.ndarray
    top: int = 5

    def top_points(self, k: int | None = None) -> list[int]:
        """Indices of the ``k`` training points that support the prediction most."""
        k = self.top if k is None else k
        return [int(i) for i in np.argsort(-self.points.values, kind="stable")[:k]]

    def top_features(self, k: int | None = None) -> list[str]:
        """Names of the ``k`` features with the largest absolute SHAP value."""
        k = self.top if k is None else k
        order = np.argsort(-np.abs(self.features.values), kind="stable")[:k]
        return [self.features.names[i] for i in order]

    def __repr__(self) -> str:
        lines = [
            f"PredictionExplanation(prediction={self.prediction!r}, explained={self.explained!r})"
        ]
        lines.append("  features: " + ", ".join(self.top_features()))
        lines.append("  training points: " + ", ".join(map(str, self.top_points())))
        if self.contributors is not None:
            lines.append("  contributors: " + ", ".join(self.contributors.ranking()[: self.top]))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        esc = html.escape
        head = f"<p><b>Prediction</b> {esc(str(self.prediction))}"
        if self.probability is not None:
            head += f" (probability {self.probability:.3f})"
        head += f" &middot; explaining <i>{esc(self.explained)}</i></p>"

        def table(title: str, header: list[str], rows: list[list[str]]) -> str:
            th = "".join(f"<th>{esc(h)}</th>" for h in header)
            body = "".join(
                "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows
            )
            return (
                "<div style='margin-right:2em'><b>" + esc(title) + "</b>"
                f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table></div>"
            )

        names = self.features.names
        feature_rows = []
        for name in self.top_features():
            j = names.index(name)
            feature_rows.append(
                [name, f"{self.feature_values[j]:.4g}", f"{self.features.values[j]:+.4g}"]
            )
        point_rows = []
        contributors = self.points.contributors
        for i in self.top_points():
            row = [str(i), str(self.train_labels[i]), f"{self.points.values[i]:+.4g}"]
            if contributors is not None:
                row.insert(1, str(contributors[i]))
            point_rows.append(row)
        point_header = ["train row", "label", "influence"]
        if contributors is not None:
            point_header.insert(1, "contributor")
        parts = [
            table("Features behind it (SHAP)", ["feature", "value", "SHAP"], feature_rows),
            table("Training points behind it", point_header, point_rows),
        ]
        if self.contributors is not None:
            order = np.argsort(-self.contributors.values, kind="stable")
            parts.append(
                table(
                    "Contributors behind it",
                    ["contributor", "influence"],
                    [
                        [self.contributors.names[c], f"{self.contributors.values[c]:+.4g}"]
                        for c in order
                    ],
                )
            )
        return (
            head + "<div style='display:flex;align-items:flex-start'>" + "".join(parts) + "</div>"
        )


def _feature_names(preprocessing: Any, train: Dataset, n_inputs: int) -> list[str]:
    if preprocessing is None:
        return train.feature_names
    try:
        names = [str(n) for n in preprocessing.get_feature_names_out(train.feature_names)]
    except Exception:  # noqa: BLE001 - transformers without names
        names = []
    return names if len(names) == n_inputs else [f"t{j}" for j in range(n_inputs)]


def explain_prediction(
    model: Any,
    train: Dataset,
    x: Any,
    *,
    y: Any = None,
    top: int = 5,
    background_size: int = 200,
    method: str = "direct",
    damping: float = 0.0,
    seed: int = 0,
    **solver_options: Any,
) -> PredictionExplanation:
    """SHAP feature attributions and the training points/contributors behind one prediction.

    Parameters
    ----------
    model : fitted supported model (see :func:`openattrib.influence`)
    train : Dataset
        The training set of ``model``; also the SHAP background distribution.
    x : array-like of shape (n_features,)
    y : label, optional
        Explain this class (its log-odds for SHAP, its loss for influence); default the
        predicted class, or the predicted value for regression.
    top : int
        Rows per table in the notebook display.
    background_size : int
        Training rows (drawn with ``seed``) used as SHAP background.
    method, damping, **solver_options
        As for :func:`openattrib.influence`.

    Examples
    --------
    >>> import openattrib as oa
    >>> from sklearn.linear_model import LogisticRegression
    >>> train, valid = oa.datasets.load_demo()
    >>> model = LogisticRegression(max_iter=1000).fit(train.X, train.y)
    >>> explanation = oa.explain_prediction(model, train, valid.X[0])
    """
    import shap

    train = check_dataset(train, "train")
    prepared = prepare(model, train, method=method, damping=damping, **solver_options)
    glm = prepared.glm
    values, target = point_influence(prepared, x, y)
    X_row = as_rows(x)
    inputs = prepared.design[:, : glm.n_inputs - int(glm.fit_intercept)]
    row = X_row if prepared.preprocessing is None else prepared.preprocessing.transform(X_row)
    row = np.asarray(row, dtype=np.float64)
    prediction = model.predict(X_row)[0]
    probability = None
    final = split_pipeline(model)[1]
    if glm.kind == "squared":
        explained_class = None
        explained = "predicted value" if y is None else f"squared error at y={y!r}"
    else:
        explained_class = prediction if y is None else y
        if isinstance(explained_class, np.generic):
            explained_class = explained_class.item()
        k = int(np.searchsorted(glm.classes, explained_class))
        probability = float(model.predict_proba(X_row)[0, k])
        explained = f"class {explained_class!r}" + (" (predicted)" if y is None else "")
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    size = min(int(background_size), inputs.shape[0])
    background = inputs[np.sort(rng.choice(inputs.shape[0], size=size, replace=False))]
    explainer = shap.LinearExplainer(final, shap.maskers.Independent(background, max_samples=size))
    explanation = explainer(row)
    shap_values = np.asarray(explanation.values[0], dtype=np.float64)
    base = np.asarray(explanation.base_values[0], dtype=np.float64)
    if glm.kind == "multinomial":
        shap_values, base = shap_values[:, k], base[k]
    elif glm.kind == "binary" and k == 0:  # log-odds of class 0 is minus the margin
        shap_values, base = -shap_values, -base
    feature_names = _feature_names(prepared.preprocessing, train, inputs.shape[1])
    features = Attribution(
        shap_values,
        feature_names,
        method="shap-linear",
        parameters={"background_size": size, "seed": seed, "explained": explained},
        seed=seed,
        provenance=make_provenance(dataset_hash=train.content_hash(), model=glm.description),
        players="players",
        diagnostics={"base_value": float(np.asarray(base).reshape(-1)[0])},
    )
    points = Attribution(
        values,
        prepared.names,
        method=f"influence-{method}",
        parameters={**prepared.parameters, "target": target},
        provenance=make_provenance(dataset_hash=train.content_hash(), model=glm.description),
        players="points",
        contributors=train.contributors,
        diagnostics=prepared.diagnostics,
    )
    return PredictionExplanation(
        prediction=prediction.item() if hasattr(prediction, "item") else prediction,
        probability=probability,
        explained=explained,
        features=features,
        points=points,
        contributors=None if train.contributors is None else points.by_contributor(),
        feature_values=row[0],
        train_labels=np.asarray(train.y),
        top=int(top),
    )
