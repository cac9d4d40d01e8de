"""Text attributions: the scoring rule, fee splits, ledger batches and bit-for-bit reproduction."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

import openattrib as oa
from openattrib.errors import VerificationError
from openattrib.ledger import merkle
from openattrib.text import (
    Corpus,
    SpanIndex,
    attribute_output,
    batch_context,
    inference_record,
    reproduce,
)

DOCS = [
    ("ann", "the quick brown fox jumps over the lazy dog"),
    ("bob", "a quick brown fox is a rare sight in the city"),
    ("ann", "lazy afternoons are for reading long novels"),
    ("cat", "long novels need patience and a quiet room"),
]
OUTPUT = "the quick brown fox is reading long novels in a quiet room"
SHARES = {"model": "0.3", "contributors": "0.7"}


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    corpus = Corpus.from_records({"text": t, "contributor": c} for c, t in DOCS)
    return SpanIndex.build(corpus, tmp_path_factory.mktemp("pay") / "index", progress=False)


def test_scoring_rule_by_hand(index):
    """Weights are the spans' unigram self-information shared equally among documents."""
    att = attribute_output(index, OUTPUT, min_len=6, max_count=None)
    text = "".join(t for _, t in DOCS).encode()
    counts = {b: text.count(bytes([b])) for b in set(text)}
    total = len(text)
    expected = dict.fromkeys(["ann", "bob", "cat"], Fraction(0))
    out = OUTPUT.encode()
    spans = []
    for left in range(len(out)):  # brute-force maximal spans (infini-gram's rule)
        length = 0
        while left + length < len(out) and any(
            out[left : left + length + 1] in t.encode() for _, t in DOCS
        ):
            length += 1
        if length >= 6 and (not spans or left + length > spans[-1][1]):
            spans.append((left, left + length))
    assert [(s.start, s.end) for s in att.spans] == spans
    for left, right in spans:
        piece = out[left:right]
        weight = sum(round(-1e6 * math.log(counts[b] / total)) for b in piece)
        holders = [c for c, t in DOCS if piece in t.encode()]
        for c in holders:
            expected[c] += Fraction(weight, len(holders))
    assert att.names == ["ann", "bob", "cat"]
    assert list(att.values) == [float(expected[n] / 10**6) for n in att.names]
    docs = att.documents()
    assert math.isclose(docs.values.sum(), att.values.sum(), rel_tol=1e-12)


def test_top_fraction_keeps_the_rarest_spans(index):
    every = attribute_output(index, OUTPUT, min_len=4, max_count=None)
    few = attribute_output(index, OUTPUT, min_len=4, max_count=None, top_fraction=2 / len(OUTPUT))
    assert len(few.spans) == 2
    assert sorted(s.weight for s in few.spans) == sorted(s.weight for s in every.spans)[-2:]


def test_fee_splits_and_accrual_reconcile_exactly(index):
    outputs = [OUTPUT, "a quiet room with long novels", "the lazy dog is quick", "zzzz"]
    accrual = oa.rewards.Accrual(SHARES, platform_fee="0.05")
    total = 0
    for k, text in enumerate(outputs):
        att = attribute_output(index, text, min_len=5)
        fee = 10**18 + 7 * k
        split = oa.rewards.split_fee(fee, att, shares=SHARES, platform_fee="0.05")
        assert split.reconcile()
        assert sum(split.parties.values()) == fee
        assert sum(split.contributors.values()) == split.parties.get("contributors", 0)
        assert accrual.add(fee, att) == split
        total += fee
    assert accrual.reconcile()
    settlement = accrual.settle()
    assert sum(settlement.amounts.values()) == settlement.pool
    assert accrual.total_collected == total


def test_batch_record_proof_and_bit_for_bit_reproduction(index, tmp_path):
    outputs = [OUTPUT, "a quiet room with long novels", "the lazy dog is quick", "read long novels"]
    records, atts = [], []
    for k, text in enumerate(outputs):
        att = attribute_output(index, text, min_len=5, top_fraction=0.2)
        split = oa.rewards.split_fee(1000 + k, att, shares=SHARES)
        records.append(inference_record(att, fee=1000 + k, split=split, inference=f"req-{k}"))
        atts.append(att)
    with oa.Ledger(tmp_path / "ledger.sqlite") as led:
        led.append_run(oa.Attribution([1.0], names=["x"], method="demo"))
        entry = led.append_batch(records, context=batch_context(index))
        assert led.size == 2  # one append for the whole batch
        assert entry.record["root"] == merkle.root(records).hex()  # RFC 6962, recomputed
        assert entry.record["context"]["index"] == index.manifest_hash
        proof = led.batch_proof(entry.index, 2)
        checkpoint = led.checkpoint()
        assert oa.ledger.verify_batch_inclusion(proof, checkpoint, records[2])
        assert not oa.ledger.verify_batch_inclusion(proof, checkpoint, records[1])
        again = oa.ledger.BatchProof.from_dict(proof.to_dict())
        assert oa.ledger.verify_batch_inclusion(again, checkpoint, records[2])
        stored = led.batch_leaves(entry.index)[2]
        assert led.verify().ok
    assert stored == records[2]

    def rewards(fee, att):
        return oa.rewards.split_fee(fee, att, shares=SHARES)

    reproduced = reproduce(SpanIndex.open(index.path), stored, rewards=rewards)
    assert reproduced.result_hash() == atts[2].result_hash()
    assert list(reproduced.values) == list(atts[2].values)

    tampered = stored.replace(b'"fee":"1002"', b'"fee":"1003"')
    with pytest.raises(VerificationError, match="different record"):
        reproduce(index, tampered, rewards=rewards)


def test_reproduce_refuses_another_index(index, tmp_path):
    att = attribute_output(index, OUTPUT, min_len=5)
    record = inference_record(att)
    other_corpus = Corpus.from_records({"text": t + "!", "contributor": c} for c, t in DOCS)
    other = SpanIndex.build(other_corpus, tmp_path / "other", progress=False)
    with pytest.raises(VerificationError, match="recorded against index"):
        reproduce(other, record)
    assert reproduce(index, record).result_hash() == att.result_hash()


def test_html_highlights_spans_in_contributor_colours(index):
    att = attribute_output(index, OUTPUT, min_len=6)
    page = att._repr_html_()
    assert page.count('<span style="background:') >= len(att.spans)
    assert "quick brown fox" in page and "ann" in page


def test_document_level_sums_to_the_contributor_level(index):
    by_contributor = attribute_output(index, OUTPUT, min_len=5)
    points = attribute_output(index, OUTPUT, min_len=5, players="points")
    assert points.players == "points" and set(points.contributors) <= {"ann", "bob", "cat"}
    summed = points.by_contributor()
    for name in summed.names:
        assert math.isclose(summed[name], by_contributor[name], rel_tol=1e-12)
    assert reproduce(index, inference_record(points)).result_hash() == points.result_hash()
