"""Fuzzing the file formats users hand us: CSV contents and the JSON formats (run,
allocation, checkpoint, claims).

For every generated input the outcome is either a clean :class:`OpenAttribError` (a
one-line ``openattrib: error:`` at the command line) or a result that round-trips; any
other exception fails the test, and hypothesis' per-example deadline bounds the time.
"""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import openattrib as oa
from openattrib.cli import main
from openattrib.errors import OpenAttribError
from openattrib.ledger import evm, generate_signing_key, verify_checkpoint
from openattrib.ledger.checkpoint import Checkpoint
from openattrib.rewards import Allocation, allocate

FUZZ = settings(
    max_examples=60,
    deadline=3000,  # ms per example: a hang or runaway parse fails the test
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,  # the same examples on every run (and every CI machine)
)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# ------------------------------------------------------------------------------------ CSV
CELLS = st.one_of(
    st.sampled_from(["", "0", "1", "007", "NA", "nan", "1e308", "-inf", "True", " x", '"a,b"']),
    st.integers(-5, 5).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=4),
)
HEADERS = st.lists(
    st.sampled_from(["f1", "f2", "label", "owner", "label", "", "f\u200b1", "x,y"]),
    min_size=1,
    max_size=5,
)


@st.composite
def csv_texts(draw) -> bytes:
    header = draw(HEADERS)
    width = len(header)
    rows = draw(
        st.lists(
            st.lists(CELLS, min_size=max(width - 1, 0), max_size=width + 1), min_size=0, max_size=8
        )
    )
    text = "\n".join([",".join(header)] + [",".join(row) for row in rows]) + "\n"
    data = text.encode("utf-8")
    if draw(st.booleans()):  # sometimes damage the bytes themselves
        position = draw(st.integers(0, len(data)))
        data = data[:position] + draw(st.binary(max_size=3)) + data[position:]
    return data


@FUZZ
@given(content=csv_texts())
def test_fuzzed_csv_gives_a_dataset_or_a_clean_error(work, content):
    path = work / "fuzz.csv"
    path.write_bytes(content)
    try:
        ds = oa.Dataset.from_csv(path, target="label", contributor="owner")
    except OpenAttribError:
        return
    text = content.decode("utf-8-sig")
    assert all(isinstance(c, str) and c in text for c in ds.contributor_ids)  # as written
    again = oa.Dataset.from_frame(ds.to_frame(), target="label", contributor="contributor")
    np.testing.assert_array_equal(again.X, ds.X)
    assert again.contributor_ids == ds.contributor_ids


@settings(FUZZ, max_examples=25)
@given(content=csv_texts())
def test_fuzzed_csv_at_the_command_line_is_one_line_or_a_result(work, content, capsys):
    path, out = work / "cli.csv", work / "cli.json"
    path.write_bytes(content)
    out.unlink(missing_ok=True)
    argv = ["value", "--data", str(path), "--valid", str(path), "--target", "label"]
    argv += ["--contributor", "owner", "--method", "knn", "--no-progress", "--out", str(out)]
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    if code != 0:
        assert code == 1 and len(err) == 1 and err[0].startswith("openattrib: error: ")
        assert not out.exists()
    else:
        result = oa.Attribution.load(out)
        assert np.isfinite(result.values).all()


# ----------------------------------------------------------------------------- JSON formats
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)


def _paths(doc, prefix=()):
    """Every (container, key) position inside a JSON document."""
    items = (
        doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    )
    for key, value in items:
        yield prefix + (key,)
        yield from _paths(value, prefix + (key,))


@st.composite
def mutated(draw, base: dict) -> object:
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(doc))
        action = draw(st.sampled_from(["replace", "delete", "add", "whole"]))
        if action == "whole" or not paths:
            return draw(JSON_VALUES)
        path = draw(st.sampled_from(paths))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if action == "replace":
            parent[path[-1]] = draw(JSON_VALUES)
        elif action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=5))] = draw(JSON_VALUES)
        else:
            parent.append(draw(JSON_VALUES))
    return doc


def _attribution() -> oa.Attribution:
    return oa.Attribution(
        [0.5, 0.3, -0.1],
        names=["ann", "ben", "cat"],
        stderr=[0.01, 0.02, 0.03],
        counts=[10, 10, 10],
        method="tmc_shapley",
        seed=0,
        players="contributors",
        parameters={"truncation": 0.01},
        provenance={"dataset_hash": "ab" * 32},
    )


def _saved(obj) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        obj.save(Path(folder) / "base.json")
        return json.loads((Path(folder) / "base.json").read_text())


ATTRIBUTION = _saved(_attribution())
ALLOCATION = _saved(allocate(_attribution(), 10**6, policy="uncertainty_aware", cap="0.6"))
ADDRESSES = {n: "0x" + f"{i + 1:040x}" for i, n in enumerate(["ann", "ben", "cat"])}
CLAIMS = evm.export_allocation(Allocation.from_dict(ALLOCATION), ADDRESSES)
KEY = generate_signing_key()
CHECKPOINT = Checkpoint("example.com/log", 5, bytes(range(32))).sign(KEY).text


@FUZZ
@given(doc=mutated(ATTRIBUTION))
def test_fuzzed_run_files_load_cleanly_or_round_trip(work, doc, capsys):
    path = work / "run.json"
    path.write_text(json.dumps(doc))
    try:
        loaded = oa.Attribution.load(path)
    except OpenAttribError:
        code = main(["ledger", "append", str(work / "fuzz.sqlite"), "--run", str(path)])
        assert code == 1 and len(capsys.readouterr().err.strip().splitlines()) == 1
        return
    loaded.save(work / "again.json")
    again = oa.Attribution.load(work / "again.json")
    assert again.to_dict() == loaded.to_dict() and again.result_hash() == loaded.result_hash()


@FUZZ
@given(doc=mutated(ALLOCATION))
def test_fuzzed_allocation_files_load_cleanly_or_round_trip(work, doc):
    path = work / "alloc.json"
    path.write_text(json.dumps(doc))
    try:
        loaded = Allocation.load(path)
    except OpenAttribError:
        return
    assert sum(loaded.amounts.values()) == loaded.pool
    loaded.save(work / "alloc_again.json")
    assert Allocation.load(work / "alloc_again.json").to_dict() == loaded.to_dict()


@FUZZ
@given(doc=mutated(CLAIMS))
def test_fuzzed_claims_files_validate_cleanly(doc):
    document = doc if isinstance(doc, dict) else {"tree": doc}
    try:
        evm.validate_dump(document.get("tree"))
    except OpenAttribError:
        pass
    claims = document.get("claims")
    for claim in claims.values() if isinstance(claims, dict) else ():
        claim = claim if isinstance(claim, dict) else {}
        value = [claim.get("address"), claim.get("amount")]
        try:
            evm.verify_proof(
                document.get("root"), document.get("leafEncoding"), value, claim.get("proof")
            )
        except OpenAttribError:
            pass


@FUZZ
@given(
    position=st.integers(0, len(CHECKPOINT)),
    cut=st.integers(0, 4),
    insert=st.text(alphabet=st.characters(codec="utf-8"), max_size=4),
)
def test_fuzzed_checkpoints_verify_cleanly_or_round_trip(position, cut, insert):
    text = CHECKPOINT[:position] + insert + CHECKPOINT[position + cut :]
    try:
        checkpoint = verify_checkpoint(text, KEY.public_key())
    except OpenAttribError:
        return
    assert Checkpoint.parse(checkpoint.text) == checkpoint
    assert verify_checkpoint(checkpoint.text, KEY.public_key()) == checkpoint
