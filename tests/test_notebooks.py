"""Execute every notebook under notebooks/ with small budgets.

Each notebook's first code cell is tagged ``parameters`` and defines UPPERCASE budget
constants; this runner inserts a cell right after it that overrides them with the small
values below, then executes the whole notebook in a fresh kernel.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

# nbformat pulls in jsonschema's format checkers (over a second to import): imported where
# a notebook is read, so collecting the suite stays fast.

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"

# Small budgets per notebook (name -> overrides); notebooks not listed run as committed.
OVERRIDES: dict[str, dict[str, object]] = {
    "02_convergence.ipynb": {
        "N_PERMUTATIONS": 300,
        "N_COALITIONS": 600,
        "N_SEEDS": 20,
        "N_COVERAGE_PERMUTATIONS": 100,
        "N_DEMO_PERMUTATIONS": 60,
    },
    "05_noisy_label_experiment.ipynb": {
        "N_SAMPLES": 80,
        "SEEDS": 1,
        "TMC_BUDGET": 8,
        "BETA_BUDGET": 8,
        "BANZHAF_BUDGET": 100,
        "OOB_BAGS": 50,
    },
    "03_per_inference_attribution.ipynb": {
        "N_QUERIES": 5,
        "LATENCY_CALLS": 20,
        "BACKGROUND_SIZE": 50,
        "TOP_K": 3,
    },
    "04_reward_allocation.ipynb": {
        "MC_PERMUTATIONS": 50,
        "MAX_COPIES": 1,
        "POINT_PERMUTATIONS": 20,
    },
    "08_language_model_attribution.ipynb": {
        "PACKAGES": ["json", "csv", "textwrap", "email"],
        "N_GENERATIONS": 4,
        "ANSWER_LENGTH": 120,
    },
    "09_neural_influence.ipynb": {
        "N_TRAIN": 80,
        "N_TEST": 10,
        "HIDDEN": 8,
        "STEPS": 40,
        "N_SUBSETS": 8,
        "N_FLIP_TRAIN": 60,
        "LM_HIDDEN": 16,
        "LM_STEPS": 10,
        "LM_TRAIN": 40,
        "LORA_STEPS": 3,
        "PROJECTION_DIM": 64,
        "LATENCY_CALLS": 2,
    },
}


def parameter_cell_index(nb: dict) -> int:
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return i
    raise AssertionError("notebook has no code cell tagged 'parameters'")


@pytest.mark.notebook
@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_notebook_executes(path: Path, tmp_path: Path):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    index = parameter_cell_index(nb)
    overrides = OVERRIDES.get(path.name, {})
    if overrides:
        source = "# injected by tests/test_notebooks.py\n" + "\n".join(
            f"{name} = {value!r}" for name, value in overrides.items()
        )
        nb.cells.insert(index + 1, nbformat.v4.new_code_cell(source))
    client = NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    errors = [
        output
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert not errors


def test_every_notebook_has_a_parameter_cell_and_outputs():
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    assert paths, "no notebooks found"
    for path in paths:
        nb = json.loads(path.read_text(encoding="utf-8"))
        assert nb.get("nbformat") == 4, f"{path.name} is not an nbformat 4 notebook"
        parameter_cell_index(nb)
        executed = [c for c in nb["cells"] if c["cell_type"] == "code" and c.get("outputs")]
        assert executed, f"{path.name} is committed without outputs"
