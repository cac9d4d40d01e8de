"""SpanIndex: count / find / attribute against a brute-force scan of the token arrays."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openattrib.errors import ValidationError, VerificationError
from openattrib.text import Corpus, SpanIndex

# ----------------------------------------------------------------- brute force (the oracle)


def brute_occurrences(docs: list[list[int]], query: list[int]) -> set[tuple[int, int]]:
    m = len(query)
    return {
        (d, i)
        for d, doc in enumerate(docs)
        for i in range(len(doc) - m + 1)
        if doc[i : i + m] == query
    }


def brute_attribute(docs, query, min_len, max_count):
    """infini-gram's attribute rule, by scanning every document for every prefix."""
    spans, last_end = [], 0
    for left in range(len(query)):
        length = 0
        while left + length < len(query) and brute_occurrences(
            docs, query[left : left + length + 1]
        ):
            length += 1
        if length < min_len:
            continue
        found = brute_occurrences(docs, query[left : left + length])
        if max_count is not None and len(found) > max_count:
            continue
        if left + length <= last_end:
            continue
        last_end = left + length
        spans.append((left, left + length, len(found), found))
    return spans


def ours(spans):
    return [
        (s.start, s.end, s.count, {(o.document, o.position) for o in s.occurrences}) for s in spans
    ]


def build(corpus, **kwargs):
    folder = Path(tempfile.mkdtemp()) / "index"
    return SpanIndex.build(corpus, folder, progress=False, **kwargs)


# ------------------------------------------------------------------------ byte tokens
texts = st.text(alphabet="ab c", min_size=1, max_size=25)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    docs=st.lists(texts, min_size=1, max_size=6),
    queries=st.lists(st.text(alphabet="ab cd", min_size=1, max_size=12), min_size=1, max_size=4),
    shards=st.integers(1, 3),
    min_len=st.integers(1, 3),
    max_count=st.one_of(st.none(), st.integers(1, 4)),
)
def test_byte_index_equals_brute_force(docs, queries, shards, min_len, max_count):
    corpus = Corpus.from_records(
        {"text": t, "contributor": f"c{i % 2}"} for i, t in enumerate(docs)
    )
    index = build(corpus, shards=min(shards, len(docs)))
    token_docs = [list(t.encode()) for t in docs]
    try:
        for q in queries:
            ids = list(q.encode())
            expected = brute_occurrences(token_docs, ids)
            assert index.count(q) == len(expected)
            found = index.find(q.encode())
            assert {(o.document, o.position) for o in found} == expected
            assert all(o.contributor == f"c{o.document % 2}" for o in found)
            assert len(index.find(q, limit=2)) == min(2, len(expected))
            following: dict[int, int] = {}
            for d, i in expected:
                if i + len(ids) < len(token_docs[d]):
                    token = token_docs[d][i + len(ids)]
                    following[token] = following.get(token, 0) + 1
            assert index.next_token_counts(ids) == following
            assert ours(
                index.attribute(ids, min_len=min_len, max_count=max_count)
            ) == brute_attribute(token_docs, ids, min_len, max_count)
    finally:
        shutil.rmtree(index.path.parent)


# ---------------------------------------------------------- 2-byte tokens (a word-level vocabulary)
@pytest.fixture(scope="module")
def word_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {f"w{i}": i for i in range(300)}  # 300 ids: needs uint16
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="w0"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return tok


# tokens whose little-endian bytes sort differently from their values (1 = 01 00, 256 = 00 01)
words = st.lists(st.sampled_from([0, 1, 2, 255, 256, 257, 299]), min_size=1, max_size=12)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    docs=st.lists(words, min_size=1, max_size=5),
    queries=st.lists(words, min_size=1, max_size=3),
    shards=st.integers(1, 2),
)
def test_u16_index_equals_brute_force(word_tokenizer, docs, queries, shards):
    corpus = Corpus.from_records(
        {"text": " ".join(f"w{t}" for t in d), "contributor": "x"} for d in docs
    )
    index = build(corpus, tokenizer=word_tokenizer, shards=min(shards, len(docs)))
    try:
        assert index.dtype == np.dtype("<u2")
        for q in queries:
            assert index.count(q) == len(brute_occurrences(docs, q))
            assert ours(index.attribute(q, min_len=1)) == brute_attribute(docs, q, 1, None)
    finally:
        shutil.rmtree(index.path.parent)


# ------------------------------------------------------------------------ the manifest
@pytest.fixture
def small(tmp_path):
    corpus = Corpus.from_records(
        [
            {"text": "the cat sat on the mat", "contributor": "ann"},
            {"text": "the dog sat on the log", "contributor": "bob"},
        ]
    )
    return corpus, SpanIndex.build(corpus, tmp_path / "index", progress=False)


def test_index_directory_holds_manifest_and_opens(small):
    corpus, index = small
    manifest = json.loads((index.path / "manifest.json").read_text())
    assert manifest["corpus_hash"] == corpus.content_hash
    assert manifest["tokenizer"] == {"kind": "bytes", "encoding": "utf-8"}
    assert manifest["format"] == "openattrib.text.span_index/1"
    again = SpanIndex.open(index.path, corpus=corpus)
    assert again.count("sat on the") == 2
    assert again.manifest_hash == index.manifest_hash


def test_index_from_another_corpus_is_refused_by_hash(small):
    _, index = small
    other = Corpus.from_records([{"text": "the cat sat on the mat!", "contributor": "ann"}])
    with pytest.raises(VerificationError, match="built from corpus"):
        SpanIndex.open(index.path, corpus=other)


@pytest.mark.parametrize("damage", ["truncate", "flip", "manifest", "missing"])
def test_damaged_index_is_one_clear_error(small, damage):
    _, index = small
    path = index.path
    if damage == "truncate":
        data = (path / "table.0").read_bytes()
        (path / "table.0").write_bytes(data[:-1])
    elif damage == "flip":
        data = bytearray((path / "tokenized.0").read_bytes())
        data[3] ^= 1
        (path / "tokenized.0").write_bytes(bytes(data))
    elif damage == "manifest":
        manifest = json.loads((path / "manifest.json").read_text())
        manifest["corpus_hash"] = "0" * 64
        (path / "manifest.json").write_text(json.dumps(manifest))
    else:
        (path / "offset.0").unlink()
    with pytest.raises(VerificationError, match="rebuild"):
        SpanIndex.open(path)


def test_failed_build_leaves_nothing(tmp_path, monkeypatch):
    corpus = Corpus.from_records([{"text": "abc", "contributor": "a"}])
    import openattrib.text._build as module

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(module, "write_suffix_table", boom)
    with pytest.raises(RuntimeError):
        SpanIndex.build(corpus, tmp_path / "index", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_bad_queries_are_refused(small):
    _, index = small
    with pytest.raises(ValidationError, match="token ids must be in 0..254"):
        index.count([1, 255])
    with pytest.raises(ValidationError, match="non-empty"):
        index.count("")
    with pytest.raises(ValidationError, match="min_len"):
        index.attribute("cat", min_len=0)


def test_shards_by_memory_budget_answer_like_one_shard(tmp_path):
    rng = np.random.default_rng(0)
    texts = ["".join(rng.choice(list("abc "), size=int(rng.integers(20, 60)))) for _ in range(30)]
    corpus = Corpus.from_records(
        {"text": t, "contributor": f"c{i % 3}"} for i, t in enumerate(texts)
    )
    one = SpanIndex.build(corpus, tmp_path / "one", progress=False)
    many = SpanIndex.build(corpus, tmp_path / "many", memory_budget=1000, progress=False)
    assert len(one.shards) == 1 and len(many.shards) > 3
    sizes = [len(t.encode()) + 1 for t in texts]  # SEP + bytes per document
    for info in many.manifest["shards"]:  # cut at 1000 / 5 bytes of tokens, greedily
        begin, n = info["doc_start"], info["n_documents"]
        assert info["n_bytes"] == sum(sizes[begin : begin + n]) <= 200
        assert begin + n == len(texts) or info["n_bytes"] + sizes[begin + n] > 200
    streamed = tmp_path / "corpus.jsonl"
    streamed.write_text("".join(json.dumps({"text": t, "contributor": "c"}) + "\n" for t in texts))
    from_file = SpanIndex.build(  # tokenised in a process of its own
        Corpus.from_jsonl(streamed), tmp_path / "file", memory_budget=1000, progress=False
    )
    assert from_file.manifest["shards"] == many.manifest["shards"]
    for name in ("table", "tokenized", "offset"):
        for number in range(len(many.shards)):
            assert (tmp_path / "file" / f"{name}.{number}").read_bytes() == (
                tmp_path / "many" / f"{name}.{number}"
            ).read_bytes()
    for q in ["ab", "a c", "cab ", "bbb"]:
        assert one.count(q) == many.count(q)
        assert ours(one.attribute(q + "cab", min_len=1)) == ours(
            many.attribute(q + "cab", min_len=1)
        )


@pytest.mark.slow
def test_shards_searched_in_worker_processes_answer_like_serial(tmp_path):
    rng = np.random.default_rng(1)
    texts = ["".join(rng.choice(list("abc "), size=int(rng.integers(20, 60)))) for _ in range(30)]
    corpus = Corpus.from_records(
        {"text": t, "contributor": f"c{i % 3}"} for i, t in enumerate(texts)
    )
    many = SpanIndex.build(corpus, tmp_path / "many", shards=4, progress=False)
    query = texts[3][5:40] + "ccc" + texts[7][:20]
    serial = ours(many.attribute(query, min_len=2))
    assert ours(many.attribute(query, min_len=2, backend="loky", n_jobs=2)) == serial


def test_transformers_tokenizer_object_is_accepted(tmp_path, word_tokenizer):
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(tokenizer_object=word_tokenizer)
    corpus = Corpus.from_records([{"text": "w1 w256 w2", "contributor": "a"}])
    index = SpanIndex.build(corpus, tmp_path / "i", tokenizer=fast, progress=False)
    reopened = SpanIndex.open(index.path)
    assert reopened.count("w256 w2") == 1
    assert reopened.manifest["tokenizer"]["kind"] == "huggingface"
    word_tokenizer.save(str(tmp_path / "tok.json"))
    from_file = SpanIndex.build(
        corpus, tmp_path / "j", tokenizer=tmp_path / "tok.json", progress=False
    )
    assert from_file.count("w256 w2") == 1 and from_file.dtype == np.dtype("<u2")


@pytest.fixture(scope="module")
def bpe_tokenizer():
    """A byte-level BPE (GPT-2 pre-tokenizer) trained here on a little mixed text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    lines = [
        "def f(x):\n    return x + 1\n",
        "the cat's hat\t is  here.\n\n",
        "naïve 12 345 'quoted'",
    ]
    tok.train_from_iterator(lines * 20, trainer=trainer)
    return tok


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(alphabet=" \t\n\rab'.:1é\u00a0\u2028x", min_size=1, max_size=120))
def test_long_texts_encoded_in_pieces_give_the_ids_of_the_whole(bpe_tokenizer, text):
    """Oracle: the tokenizer's own encoding of the whole text, against encode_many cutting
    it into pieces of a few characters and batches of a few pieces."""
    from openattrib.text import tokenize

    ours = tokenize.HFTokenizer(bpe_tokenizer)
    assert ours.splits_exactly
    whole = bpe_tokenizer.encode(text, add_special_tokens=False).ids
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tokenize, "_PIECE_CHARS", 2)
        patch.setattr(tokenize, "_BATCH_CHARS", 5)
        assert len(tokenize._pieces(text)) >= 1
        got = ours.encode_many([text, "x y", text])
    assert got[0].tolist() == whole and got[2].tolist() == whole
    assert got[1].tolist() == bpe_tokenizer.encode("x y", add_special_tokens=False).ids


def test_tokenizers_that_see_across_cuts_encode_whole_texts(word_tokenizer, bpe_tokenizer):
    from tokenizers import normalizers

    from openattrib.text.tokenize import HFTokenizer

    assert not HFTokenizer(word_tokenizer).splits_exactly  # WhitespaceSplit, not ByteLevel
    with_normalizer = copy_tokenizer(bpe_tokenizer)
    with_normalizer.normalizer = normalizers.Lowercase()
    assert not HFTokenizer(with_normalizer).splits_exactly


def copy_tokenizer(tok):
    from tokenizers import Tokenizer

    return Tokenizer.from_str(tok.to_str())


@pytest.mark.slow
def test_shards_queried_on_a_dask_cluster_answer_like_one_shard(tmp_path):
    """Four shards searched by the processes of a real (loopback) Dask cluster give the
    spans, counts and documents of a one-shard index of the same corpus."""
    distributed = pytest.importorskip("dask.distributed")
    rng = np.random.default_rng(2)
    texts = ["".join(rng.choice(list("abc "), size=int(rng.integers(20, 60)))) for _ in range(40)]
    corpus = Corpus.from_records(
        {"text": t, "contributor": f"c{i % 3}"} for i, t in enumerate(texts)
    )
    one = SpanIndex.build(corpus, tmp_path / "one", shards=1, progress=False)
    many = SpanIndex.build(corpus, tmp_path / "many", shards=4, progress=False)
    queries = [texts[3][5:40] + "ccc" + texts[7][:20], texts[11] + texts[12][:9], "abcabc a"]
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        on_cluster = [ours(many.attribute(q, min_len=2, client=client)) for q in queries]
        assert client.run(lambda: 1)  # the workers were up for the queries
    assert on_cluster == [ours(one.attribute(q, min_len=2)) for q in queries]
    assert any(len(spans) > 1 for spans in on_cluster)


def test_streamed_corpus_with_a_huggingface_tokenizer_builds_like_one_in_memory(
    tmp_path, bpe_tokenizer
):
    """The streamed build tokenises in another process from the tokenizer's JSON (the
    caller's copy released); its files equal those of the in-process build."""
    texts = ["def f(x):\n    return x + 1\n" * 3, "the cat's hat is here.", "naïve 12 345"]
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps({"text": t, "contributor": "c"}) + "\n" for t in texts))
    bpe_tokenizer.save(str(tmp_path / "tokenizer.json"))
    streamed = SpanIndex.build(
        Corpus.from_jsonl(path), tmp_path / "a", tokenizer=str(tmp_path / "tokenizer.json")
    )
    in_memory = SpanIndex.build(
        Corpus.from_jsonl(path, in_memory=True), tmp_path / "b", tokenizer=bpe_tokenizer
    )
    assert streamed.manifest["files"] == in_memory.manifest["files"]
    ids = bpe_tokenizer.encode(texts[0], add_special_tokens=False).ids
    assert streamed.count(ids) == 1 and streamed.document_tokens(0).tolist() == ids
