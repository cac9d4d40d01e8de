"""TracIn and TRAK on tiny torch models (CPU, float64).

Oracles: per-example gradients from a plain loop with ``loss.backward()`` (TracIn), the
closed-form logistic-regression gradients of :mod:`openattrib.influence.glm` for a torch
copy of a scikit-learn model, influence functions on the same convex model, and the LDS
from actually retraining the MLP on random half subsets (TRAK).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import iris_split  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import openattrib as oa  # noqa: E402
from openattrib.errors import BudgetError, UnsupportedError, ValidationError  # noqa: E402
from openattrib.influence import lds, subset_masks, tracin, trak  # noqa: E402


def _iris():
    return iris_split()


def _mlp(seed: int, n_in: int = 4, hidden: int = 8, n_out: int = 3) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(n_in, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, n_out)
    ).double()


def _train(model, X, y, steps: int, lr: float, save_every: int | None = None):
    """Full-batch SGD; returns the saved (state_dict, lr) checkpoints."""
    optimiser = torch.optim.SGD(model.parameters(), lr=lr)
    X = torch.tensor(X, dtype=torch.float64)
    y = torch.tensor(y, dtype=torch.long)
    saved = []
    for step in range(steps):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(model(X), y).backward()
        optimiser.step()
        if save_every and (step + 1) % save_every == 0:
            saved.append(copy.deepcopy(model.state_dict()))
    return saved


def _loop_gradients(model, state, X, y, names=None):
    """Per-example loss gradients, one ``loss.backward()`` per example (the oracle)."""
    net = copy.deepcopy(model)
    net.load_state_dict(state)
    params = [(n, p) for n, p in net.named_parameters() if names is None or n in names]
    rows = []
    for i in range(X.shape[0]):
        net.zero_grad()
        out = net(torch.tensor(X[i : i + 1], dtype=torch.float64))
        torch.nn.functional.cross_entropy(out, torch.tensor(y[i : i + 1])).backward()
        rows.append(torch.cat([p.grad.reshape(-1) for _, p in params]).numpy().copy())
    return np.array(rows)


@pytest.fixture(scope="module")
def trained():
    train, test = _iris()
    model = _mlp(0)
    checkpoints = _train(model, train.X, train.y, steps=60, lr=0.5, save_every=20)
    return model, checkpoints, train, test


def test_tracin_equals_loop_over_backward(trained, tmp_path):
    model, checkpoints, train, test = trained
    rates = [0.5, 0.3, 0.1]
    reference = np.zeros((test.n_samples, train.n_samples))
    self_reference = np.zeros(train.n_samples)
    for state, rate in zip(checkpoints, rates, strict=True):
        g_train = _loop_gradients(model, state, train.X, train.y)
        g_test = _loop_gradients(model, state, test.X, test.y)
        reference += rate * g_test @ g_train.T
        self_reference += rate * (g_train**2).sum(axis=1)
    paths = []
    for c, state in enumerate(checkpoints):
        paths.append(tmp_path / f"ckpt{c}.pt")
        torch.save(state, paths[-1])
    for given in (checkpoints, paths):
        result = tracin(model, train, test, checkpoints=given, learning_rates=rates, progress=False)
        np.testing.assert_allclose(result.to_array(), reference, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(result.self_influence().values, self_reference, rtol=1e-9)
    # last layer only
    last = tracin(model, train, test, checkpoints=checkpoints[-1:], layers=["2"], progress=False)
    g_train = _loop_gradients(model, checkpoints[-1], train.X, train.y, {"2.weight", "2.bias"})
    g_test = _loop_gradients(model, checkpoints[-1], test.X, test.y, {"2.weight", "2.bias"})
    np.testing.assert_allclose(last.to_array(), g_test @ g_train.T, rtol=1e-9, atol=1e-12)
    assert last.for_test(0).level == "points"


def test_tracin_projection_preserves_inner_products(trained):
    model, checkpoints, train, test = trained
    exact = tracin(model, train, test, checkpoints=checkpoints, progress=False).to_array()
    projected = tracin(
        model, train, test, checkpoints=checkpoints, projection_dim=512, seed=0, progress=False
    ).to_array()
    assert np.corrcoef(exact.ravel(), projected.ravel())[0, 1] > 0.95


def test_torch_gradients_equal_closed_form_glm_gradients():
    """A torch copy of a fitted LogisticRegression: TracIn with one checkpoint = G_test G^T."""
    train, test = _iris()
    sk = LogisticRegression(C=0.5, tol=1e-10, max_iter=10_000).fit(train.X, train.y)
    net = torch.nn.Linear(4, 3).double()
    with torch.no_grad():
        net.weight.copy_(torch.as_tensor(sk.coef_))
        net.bias.copy_(torch.as_tensor(sk.intercept_))
    from openattrib.influence.sklearn_models import glm_from_estimator

    glm, _ = glm_from_estimator(sk)

    def grads(ds):
        return glm.gradients(glm.design(ds.X), glm.residuals(glm.design(ds.X), ds.y))

    # torch orders parameters as (weight (3x4), bias (3)); the GLM as (3 x (4 + 1)) rows
    def to_torch(G):
        return np.hstack(
            [G.reshape(-1, 3, 5)[:, :, :4].reshape(-1, 12), G.reshape(-1, 3, 5)[:, :, 4]]
        )

    expected = to_torch(grads(test)) @ to_torch(grads(train)).T
    result = tracin(net, train, test, progress=False)
    np.testing.assert_allclose(result.to_array(), expected, rtol=1e-9, atol=1e-12)


def _loop_margin_gradients(net, X, y):
    """Per-example gradients of log p_y - log(1 - p_y) = (2y - 1) z, one backward each."""
    rows = []
    for i in range(X.shape[0]):
        net.zero_grad()
        logit = net(torch.tensor(X[i : i + 1]))[0, 0]
        ((2.0 * y[i] - 1.0) * logit).backward()
        rows.append(torch.cat([p.grad.reshape(-1) for p in net.parameters()]).numpy().copy())
    return np.array(rows)


def test_trak_equals_its_formula_with_independent_gradients():
    """Park et al. (2023), Algorithm 1: with k = n_params the projection cancels, so TRAK is
    mean_m g_test (G^T G)^{-1} G^T diag(1 - p), built here from a backward loop."""
    ds = oa.datasets.load_breast_cancer()
    ds = oa.Dataset(StandardScaler().fit_transform(ds.X[:, :6]), ds.y)
    train, test = ds.split(test_size=20, seed=0)
    ensemble = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        net = torch.nn.Linear(6, 1).double()
        optimiser = torch.optim.SGD(net.parameters(), lr=0.3)
        X, y = torch.tensor(train.X), torch.tensor(train.y, dtype=torch.float64)
        for _ in range(30 + 20 * seed):
            optimiser.zero_grad()
            torch.nn.functional.binary_cross_entropy_with_logits(net(X)[:, 0], y).backward()
            optimiser.step()
        ensemble.append(net)
    result = trak(ensemble, train, test, projection_dim=7, damping=0.0, progress=False)
    # fewer training points than gradient entries: the minimum-norm (pseudo-inverse) TRAK
    few = train.subset(np.arange(5))
    G = _loop_margin_gradients(ensemble[0], few.X, few.y)
    g = _loop_margin_gradients(ensemble[0], test.X, test.y)
    with torch.no_grad():
        p1 = torch.sigmoid(ensemble[0](torch.tensor(few.X))[:, 0]).numpy()
    expected = g @ np.linalg.pinv(G.T @ G) @ G.T * (1 - np.where(few.y == 1, p1, 1 - p1))
    small = trak(ensemble[0], few, test, damping=0.0, progress=False)
    np.testing.assert_allclose(small.to_array(), expected, rtol=1e-6, atol=1e-9)
    with pytest.raises(ValidationError, match="TRAK kernel"):  # duplicated examples
        trak(ensemble[0], train.subset([0, 0, 1]), test, damping=0.0, progress=False)
    reference = np.zeros(result.shape)
    self_reference = np.zeros(train.n_samples)
    weights = np.zeros(train.n_samples)
    for net in ensemble:
        G = _loop_margin_gradients(net, train.X, train.y)
        g = _loop_margin_gradients(net, test.X, test.y)
        kernel = np.linalg.inv(G.T @ G)
        reference += g @ kernel @ G.T / 2
        self_reference += np.einsum("ij,jk,ik->i", G, kernel, G) / 2
        with torch.no_grad():
            p1 = torch.sigmoid(net(torch.tensor(train.X))[:, 0]).numpy()
        weights += (1 - np.where(train.y == 1, p1, 1 - p1)) / 2
    np.testing.assert_allclose(result.to_array(), reference * weights, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(result.self_influence().values, self_reference * weights, rtol=1e-6)


def _fit_mlp(X, y, seed: int, steps: int = 150):
    net = torch.nn.Sequential(
        torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2)
    ).double()
    torch.manual_seed(seed)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.5)
    optimiser = torch.optim.Adam(net.parameters(), lr=0.05, weight_decay=1e-3)
    Xt = torch.tensor(X)
    yt = torch.tensor(y, dtype=torch.long)
    for _ in range(steps):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(net(Xt), yt).backward()
        optimiser.step()
    return net


@pytest.mark.slow  # 50 real retrainings
def test_trak_lds_on_a_small_mlp():
    """TRAK's LDS against MLPs actually retrained on 50 random half subsets."""
    ds = oa.datasets.make_classification(
        n_samples=110, n_features=2, n_informative=2, flip_y=0.05, class_sep=0.8, seed=5
    )
    ds = oa.Dataset(StandardScaler().fit_transform(ds.X), ds.y)
    train, test = ds.split(test_size=30, seed=0)
    ensemble = [_fit_mlp(train.X, train.y, seed=s) for s in range(5)]
    result = trak(ensemble, train, test, projection_dim=64, progress=False)
    masks = subset_masks(train.n_samples, n_subsets=50, alpha=0.5, seed=0)
    actual = np.empty((50, test.n_samples))
    Xtest = torch.tensor(test.X)
    for j, mask in enumerate(masks):
        net = _fit_mlp(train.X[mask], train.y[mask], seed=100 + j)
        with torch.no_grad():
            logp = torch.log_softmax(net(Xtest), dim=1).numpy()
        correct = logp[np.arange(test.n_samples), test.y]
        other = logp[np.arange(test.n_samples), 1 - test.y]
        actual[j] = correct - other  # the margin TRAK attributes
    score = lds(result, masks, actual)
    random = lds(np.random.default_rng(0).standard_normal(result.shape), masks, actual)
    print("TRAK LDS", score, "random", random)
    assert score.mean > 0.3, score
    assert score.mean > random.mean + 0.25


def test_torch_bad_input_is_explained(trained):
    model, checkpoints, train, test = trained
    with pytest.raises(UnsupportedError, match="torch.nn.Module"):
        tracin(LogisticRegression(), train, test)
    with pytest.raises(ValidationError, match="class indices"):
        tracin(model, oa.Dataset(train.X, train.y + 0.5), test, progress=False)
    with pytest.raises(ValidationError, match="matches no trainable parameter"):
        tracin(model, train, test, layers=["nope"], progress=False)
    with pytest.raises(ValidationError, match="one per checkpoint"):
        tracin(model, train, test, checkpoints=checkpoints, learning_rates=[1, 2], progress=False)
    with pytest.raises(ValidationError, match="lacks parameters"):
        tracin(model, train, test, checkpoints=[{"0.weight": torch.zeros(8, 4)}], progress=False)
    with pytest.raises(BudgetError, match="projection_dim.*memory_budget"):
        tracin(model, train, test, memory_budget=1000, progress=False)
    with (
        pytest.warns(DeprecationWarning, match="max_bytes= is deprecated.*use memory_budget="),
        pytest.raises(BudgetError, match="memory_budget=0.0 MiB"),
    ):
        tracin(model, train, test, max_bytes=1000, progress=False)
    with pytest.raises(ValidationError, match="either a list of models"):
        trak([model], train, test, checkpoints=checkpoints, progress=False)
