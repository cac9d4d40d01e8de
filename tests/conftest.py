"""Shared test helpers and data fixtures.

One place for the small data sets several test modules use, so that a change of a shared
fixture is made once. Module-scoped fixtures are read-only: ``oa.Dataset`` arrays are not
writeable, so no test can alter what another one sees.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

# One BLAS/OpenMP thread per test process, as `make test` sets it: the suite runs two xdist
# workers on two cores, and nested BLAS threads would oversubscribe them. Set before numpy,
# scipy or torch load their thread pools; an explicit setting in the environment wins.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import openattrib as oa  # noqa: E402
from openattrib.cli import main  # noqa: E402

# numpy may already be loaded by a plugin before this file runs: limit its pool explicitly.
if os.environ["OMP_NUM_THREADS"] == "1":
    threadpool_limits(1)


def standardised(ds: oa.Dataset, target: bool = False) -> oa.Dataset:
    """``ds`` with zero-mean, unit-variance features (and target, with ``target=True``)."""
    X = StandardScaler().fit_transform(ds.X)
    y = (ds.y - ds.y.mean()) / ds.y.std() if target else ds.y
    return oa.Dataset(X, y, contributors=ds.contributors)


def random_arrays(n: int = 12, d: int = 3, seed: int = 0, contributors: bool = True):
    """Gaussian features, alternating binary labels and three contributors ``c0..c2``."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = np.arange(n) % 2
    ids = [f"c{i % 3}" for i in range(n)] if contributors else None
    return X, y, ids


def iris_split() -> tuple[oa.Dataset, oa.Dataset]:
    """Standardised iris, 120 training and 30 test rows (``split(test_size=30, seed=0)``)."""
    return standardised(oa.datasets.load_iris()).split(test_size=30, seed=0)


@pytest.fixture
def tiny_pair() -> tuple[oa.Dataset, oa.Dataset]:
    """20 Gaussian training points and 5 test points with random binary labels."""
    rng = np.random.default_rng(0)
    train = oa.Dataset(rng.normal(size=(20, 3)), rng.integers(0, 2, 20))
    test = oa.Dataset(rng.normal(size=(5, 3)), rng.integers(0, 2, 5))
    return train, test


@pytest.fixture(scope="module")
def cancer_split() -> tuple[oa.Dataset, oa.Dataset]:
    """Standardised breast cancer, 6 contributors; 100 training and 60 validation rows."""
    raw = oa.datasets.load_breast_cancer()
    ds = oa.datasets.partition(standardised(raw), 6, seed=1)
    rows = np.random.default_rng(0).choice(ds.n_samples, 160, replace=False)
    return ds.subset(rows[:100]), ds.subset(rows[100:])


@pytest.fixture(scope="module")
def partitioned_split() -> tuple[oa.Dataset, oa.Dataset]:
    """80 synthetic points among 5 contributors, split half and half."""
    ds = oa.datasets.make_classification(
        n_samples=80, n_features=4, n_informative=2, class_sep=1.0, seed=3
    )
    return oa.datasets.partition(ds, 5, seed=3).split(test_size=0.5, seed=0)


# ----------------------------------------------------------------------------- browser
def chromium() -> str:
    """Path of a headless-capable Chromium, installed from Debian's packages if missing.

    The install runs once per machine under a file lock, so two test workers never run
    apt-get at the same time. Skips (with the reason) where it cannot be installed.
    """
    lock_path = Path(tempfile.gettempdir()) / "openattrib-chromium.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for name in ("chromium", "chromium-browser", "google-chrome"):
            found = shutil.which(name)
            if found:
                return found
        apt = shutil.which("apt-get")
        if apt and hasattr(os, "geteuid") and os.geteuid() == 0:
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            install = [apt, "install", "-y", "-q", "chromium"]
            if subprocess.run(install, env=env, capture_output=True, timeout=900).returncode:
                subprocess.run([apt, "update", "-q"], env=env, capture_output=True, timeout=600)
                subprocess.run(install, env=env, capture_output=True, timeout=900)
            found = shutil.which("chromium")
            if found:
                return found
    pytest.skip(
        "no Chromium browser available and it cannot be installed here (needs root and apt-get)"
    )


def chromium_args(browser: str, profile: Path) -> list[str]:
    """Headless flags for a machine with no network but the package registries."""
    return [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}",
    ]  # fmt: skip


# ---------------------------------------------------------------------------- npm packages
NODE_DIR = Path(__file__).parent / "node"


@pytest.fixture(scope="session")
def node_packages() -> Path:
    """tests/node with its pinned npm packages installed (``npm ci`` from its lock file).

    Used by the OpenZeppelin merkle-tree oracle, the solc rebuild of the contracts and the
    ganache node. ``npm ci`` runs under a file lock (test workers share the folder). Skips
    only when node or npm is absent from the machine; a failing ``npm ci`` fails.
    """
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed for the npm-package oracles (solc, ganache, OZ)")
    lock = json.loads((NODE_DIR / "package-lock.json").read_text())
    wanted = {
        name.removeprefix("node_modules/"): spec["version"]
        for name, spec in lock["packages"].items()
        if name.count("node_modules/") == 1 and not spec.get("dev")
    }

    def missing() -> bool:
        for name, version in wanted.items():
            path = NODE_DIR / "node_modules" / name / "package.json"
            if not path.exists() or json.loads(path.read_text()).get("version") != version:
                return True
        return False

    with open(Path(tempfile.gettempdir()) / "openattrib-npm.lock", "w") as file_lock:
        fcntl.flock(file_lock, fcntl.LOCK_EX)
        if missing():
            result = subprocess.run(
                [shutil.which("npm"), "ci", "--prefix", str(NODE_DIR), "--no-audit", "--no-fund"],
                capture_output=True,
                text=True,
                timeout=900,
            )
            if result.returncode != 0:
                pytest.fail(f"npm ci --prefix tests/node failed:\n{result.stderr[-3000:]}")
    return NODE_DIR


# ---------------------------------------------- hostile input: CLI refusals leave no trace
def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes (to show nothing was created or changed).

    SQLite's shared-memory index (``-shm``) and an empty write-ahead log (``-wal``), which a
    read-only reader of a WAL database may leave beside it, are not counted.
    """
    files = {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    return {
        name: data
        for name, data in files.items()
        if not name.endswith("-shm") and not (name.endswith("-wal") and not data)
    }


def refused(capsys, argv: list[str], message: str, folder: Path) -> str:
    """Run the CLI; assert exit 1, one ``openattrib: error:`` line holding ``message``, and
    that no file under ``folder`` was created or changed. Returns the error line."""
    before = snapshot(folder)
    code = main(argv)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 1, (code, captured.out, captured.err)
    assert len(lines) == 1 and lines[0].startswith("openattrib: error: "), lines
    assert message in lines[0], lines[0]
    assert "\x1b" not in captured.err  # nothing a terminal would interpret
    assert snapshot(folder) == before
    return lines[0]


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    lines = [",".join(header)] + [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def table(n: int = 24, ids: list[str] | None = None, seed: int = 0) -> tuple[list[str], list]:
    """A small two-class table with features f1, f2, label and owner."""
    rng = np.random.default_rng(seed)
    ids = ids or ["ann", "ben", "cat"]
    rows = []
    for i in range(n):
        label = i % 2
        rows.append(
            [
                round(float(rng.normal(label, 1.0)), 4),
                round(float(rng.normal(0, 1.0)), 4),
                label,
                ids[i % len(ids)],
            ]
        )
    return ["f1", "f2", "label", "owner"], rows


def value_args(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "value",
        "--data",
        str(data),
        "--target",
        "label",
        "--contributor",
        "owner",
        "--method",
        "knn",
        "--no-progress",
        *extra,
        "--out",
        str(out),
    ]
