"""Generate the contributor demo files deterministically.

    python data/make_demo_data.py [--out-dir DIR]

Writes, into DIR (default: this script's folder):

- ``demo_contributors.csv``: training rows with a ``contributor`` column, eight contributors
  of deliberately different quality (see ``DATA_CARD.md``);
- ``demo_validation.csv``: a clean, held-out, stratified validation set (no contributors);
- ``demo_truth.json``: what each contributor did, with the row indices (0-based, in
  ``demo_contributors.csv``) of planted flipped labels and exact / near duplicates.

Everything derives from scikit-learn's bundled Wisconsin breast cancer data and a fixed
seed, so re-running the script reproduces the committed files byte for byte.
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

from openattrib._io import atomic_write_text, canonical_json

SEED = 20240601
DECIMALS = 4
N_VALIDATION = 170
SOURCE_FEATURES = [
    "mean radius",
    "mean texture",
    "mean smoothness",
    "mean concave points",
    "worst area",
    "worst concavity",
    "worst symmetry",
    "radius error",
]
FEATURES = [name.replace(" ", "_") for name in SOURCE_FEATURES]

# name -> (benign rows, malignant rows) drawn from the real pool; derived ones have none
REAL_ROWS = {
    "alice": (45, 15),
    "bob": (38, 12),
    "carol": (38, 12),
    "frank": (0, 12),
    "grace": (38, 12),
}
ROLES = {
    "alice": ("careful", "Clean rows from the real distribution, correct labels."),
    "bob": ("average", "Real rows; 10% of labels flipped (ordinary labelling mistakes)."),
    "carol": ("sloppy_labeller", "Real rows; 40% of labels flipped."),
    "dave": ("exact_copier", "30 exact copies of alice's rows (features and labels)."),
    "erin": (
        "near_copier",
        "30 of alice's rows (disjoint from dave's) with Gaussian jitter (sd 0.02) on the features.",
    ),
    "frank": ("rare_class", "Only 12 rows, all of the rarer malignant class, clean."),
    "grace": ("noisy_features", "Real rows, correct labels, features + Gaussian noise (sd 1.0)."),
    "heidi": (
        "off_distribution",
        "40 synthetic rows: features N(2.5, 1) independent of the label, labels fair coin flips.",
    ),
}


def build() -> tuple[list[list[object]], list[list[object]], dict]:
    """Return (training rows, validation rows, truth) as plain Python objects."""
    rng = np.random.default_rng(SEED)
    bunch = load_breast_cancer()
    columns = [list(bunch.feature_names).index(name) for name in SOURCE_FEATURES]
    X = bunch.data[:, columns]
    X = np.round((X - X.mean(axis=0)) / X.std(axis=0), DECIMALS) + 0.0
    y = (bunch.target == 0).astype(np.int64)  # 1 = malignant, 0 = benign
    pool, valid = train_test_split(
        np.arange(len(y)), test_size=N_VALIDATION, stratify=y, random_state=SEED % 2**31
    )
    pool = np.sort(pool)
    available = {label: list(rng.permutation(pool[y[pool] == label])) for label in (0, 1)}

    blocks: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    truth: dict[str, dict] = {}
    for name, (n_benign, n_malignant) in REAL_ROWS.items():
        take = [available[0].pop() for _ in range(n_benign)]
        take += [available[1].pop() for _ in range(n_malignant)]
        take = np.array(take)[rng.permutation(len(take))]
        blocks[name] = (X[take].copy(), y[take].copy())
        truth[name] = {"source_rows": [int(i) for i in take]}

    def flip(name: str, fraction: float) -> None:
        features, labels = blocks[name]
        chosen = np.sort(rng.choice(len(labels), size=round(fraction * len(labels)), replace=False))
        labels[chosen] = 1 - labels[chosen]
        truth[name]["flipped_local"] = [int(i) for i in chosen]

    flip("bob", 0.10)
    flip("carol", 0.40)
    grace_X, grace_y = blocks["grace"]
    blocks["grace"] = (np.round(grace_X + rng.normal(0, 1.0, grace_X.shape), DECIMALS), grace_y)

    alice_X, alice_y = blocks["alice"]
    order = rng.permutation(len(alice_y))
    dave_src, erin_src = np.sort(order[:30]), np.sort(order[30:60])
    blocks["dave"] = (alice_X[dave_src].copy(), alice_y[dave_src].copy())
    truth["dave"] = {"copied_local": [int(i) for i in dave_src]}
    jitter = rng.normal(0, 0.02, (len(erin_src), len(FEATURES)))
    blocks["erin"] = (np.round(alice_X[erin_src] + jitter, DECIMALS), alice_y[erin_src].copy())
    truth["erin"] = {"copied_local": [int(i) for i in erin_src]}
    heidi_X = np.round(rng.normal(2.5, 1.0, (40, len(FEATURES))), DECIMALS)
    blocks["heidi"] = (heidi_X, rng.integers(0, 2, 40).astype(np.int64))
    truth["heidi"] = {}

    # assemble in a fixed contributor order; translate local indices to CSV rows
    start: dict[str, int] = {}
    rows: list[list[object]] = []
    for name in ROLES:
        features, labels = blocks[name]
        start[name] = len(rows)
        for feature_row, label in zip(features, labels, strict=True):
            rows.append([*(float(v) + 0.0 for v in feature_row), int(label), name])
    contributors = {}
    for name, (role, description) in ROLES.items():
        info = truth.get(name, {})
        first = start[name]
        entry = {
            "role": role,
            "description": description,
            "rows": [first, first + len(blocks[name][1]) - 1],
            "flipped_label_rows": [first + i for i in info.get("flipped_local", [])],
            "exact_duplicate_of": [],
            "near_duplicate_of": [],
            "source_rows": info.get("source_rows", []),
        }
        if name in ("dave", "erin"):
            key = "exact_duplicate_of" if name == "dave" else "near_duplicate_of"
            entry[key] = [
                [first + j, start["alice"] + src] for j, src in enumerate(info["copied_local"])
            ]
            alice_sources = truth["alice"]["source_rows"]
            entry["source_rows"] = [alice_sources[src] for src in info["copied_local"]]
        contributors[name] = entry
    valid_rows = [[*(float(v) + 0.0 for v in X[i]), int(y[i])] for i in np.sort(valid)]
    meta = {
        "generator": "data/make_demo_data.py",
        "seed": SEED,
        "source": "sklearn.datasets.load_breast_cancer (Wisconsin Diagnostic Breast Cancer)",
        "features": FEATURES,
        "standardisation": "z-score with mean/std of all 569 rows, rounded to 4 decimals",
        "label": "1 = malignant, 0 = benign",
        "n_train_rows": len(rows),
        "n_validation_rows": len(valid_rows),
        "row_ranges": "rows [first, last] inclusive, 0-based data rows of demo_contributors.csv",
        "duplicate_pairs": "[copy_row, original_row] pairs, 0-based rows of demo_contributors.csv",
        "source_rows": "per contributor, the row of load_breast_cancer() behind each of its rows",
        "validation_source_rows": [int(i) for i in np.sort(valid)],
        "contributors": contributors,
    }
    return rows, valid_rows, meta


def _csv_text(header: list[str], rows: list[list[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([f"{v:.{DECIMALS}f}" if isinstance(v, float) else v for v in row])
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args(argv)
    rows, valid_rows, truth = build()
    out = args.out_dir
    atomic_write_text(
        out / "demo_contributors.csv", _csv_text([*FEATURES, "label", "contributor"], rows)
    )
    atomic_write_text(out / "demo_validation.csv", _csv_text([*FEATURES, "label"], valid_rows))
    atomic_write_text(out / "demo_truth.json", canonical_json(truth).decode("utf-8") + "\n")


if __name__ == "__main__":
    main()
