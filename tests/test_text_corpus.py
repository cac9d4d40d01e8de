"""Corpus loading, its errors (naming the line) and its canonical hash; the text CLI."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest

from openattrib.cli import main
from openattrib.errors import ValidationError
from openattrib.text import Corpus


def write_jsonl(path, lines):
    path.write_bytes(
        b"\n".join(line if isinstance(line, bytes) else line.encode() for line in lines) + b"\n"
    )
    return path


def test_hash_follows_the_documented_encoding():
    corpus = Corpus.from_records(
        [{"text": "héllo", "contributor": "ann", "lang": "fr"}, {"text": "b", "contributor": 7}]
    )
    digest = hashlib.sha256(b"openattrib.text.corpus/1\n")
    for i, (text, owner, meta) in enumerate([("héllo", "ann", {"lang": "fr"}), ("b", "7", {})]):
        doc = {"contributor": owner, "doc_id": str(i), "metadata": meta, "text": text}
        encoded = json.dumps(
            doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
        digest.update(hashlib.sha256(encoded).digest())
    assert corpus.content_hash == digest.hexdigest()
    changed = Corpus.from_records(
        [{"text": "héllo", "contributor": "bob", "lang": "fr"}, {"text": "b", "contributor": 7}]
    )
    assert changed.content_hash != corpus.content_hash


def test_jsonl_csv_frame_and_records_agree(tmp_path):
    rows = [
        {"text": "one doc", "contributor": "a", "id": "d1"},
        {"text": "two", "contributor": "b", "id": "d2"},
    ]
    write_jsonl(tmp_path / "c.jsonl", [json.dumps(r) for r in rows])
    pd.DataFrame(rows).to_csv(tmp_path / "c.csv", index=False)
    hashes = {
        Corpus.from_jsonl(tmp_path / "c.jsonl", doc_id="id").content_hash,
        Corpus.from_csv(tmp_path / "c.csv", doc_id="id").content_hash,
        Corpus.from_frame(pd.DataFrame(rows), doc_id="id").content_hash,
        Corpus.from_records(rows, doc_id="id").content_hash,
    }
    assert len(hashes) == 1
    assert Corpus.from_records(rows, doc_id="id").contributors == ["a", "b"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"contributor": "a"}', "line 2: the text field 'text' is missing"),
        ('{"text": "x"}', "line 2: the contributor field 'contributor' is missing"),
        ('{"text": "", "contributor": "a"}', "line 2: the text is empty"),
        (b'{"text": "\xff", "contributor": "a"}', "line 2: not valid UTF-8"),
        ('{"text": "\\ud800", "contributor": "a"}', "line 2: the text is not valid UTF-8"),
        ('{"text": "ok", "contributor": "a", "id": "d1"}', "line 2: duplicate document id 'd1'"),
        ("{not json", "line 2: not valid JSON"),
    ],
)
def test_jsonl_errors_name_the_line(tmp_path, line, message):
    path = write_jsonl(
        tmp_path / "bad.jsonl", ['{"text": "fine", "contributor": "a", "id": "d1"}', line]
    )
    with pytest.raises(ValidationError, match=message):
        Corpus.from_jsonl(path, doc_id="id" if "id" in message else None)


def test_cli_index_count_attribute(tmp_path, capsys):
    corpus = write_jsonl(
        tmp_path / "c.jsonl",
        [json.dumps({"text": "the cat sat on the mat", "contributor": "ann"}),
         json.dumps({"text": "a dog sat on a log", "contributor": "bob"})],
    )  # fmt: skip
    out = tmp_path / "index"
    assert main(["text", "index", str(corpus), "--out", str(out), "--no-progress"]) == 0
    assert main(["text", "count", str(out), "sat on"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "2"
    (tmp_path / "answer.txt").write_text("the cat sat on a log")
    assert (
        main(
            [
                "text",
                "attribute",
                str(out),
                "--input",
                str(tmp_path / "answer.txt"),
                "--min-len",
                "4",
                "--json",
            ]
        )
        == 0
    )
    payload = json.loads(capsys.readouterr().out)
    assert payload["values"]["ann"] > 0 and payload["values"]["bob"] > 0
    assert [s["text"] for s in payload["spans"]] == ["the cat sat on ", " sat on a log"]


def test_cli_bad_input_is_one_line_and_leaves_nothing(tmp_path, capsys):
    bad = write_jsonl(tmp_path / "bad.jsonl", ['{"text": "x", "contributor": "a"}', '{"text": ""}'])
    out = tmp_path / "index"
    assert main(["text", "index", str(bad), "--out", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("openattrib: error:") and "line 2" in err and "\n" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl"]
    assert main(["text", "count", str(tmp_path / "nowhere"), "x"]) == 1
    assert "not a span index" in capsys.readouterr().err


def test_streamed_jsonl_corpus_keeps_no_text_and_refuses_a_changed_file(tmp_path):
    rows = [{"text": f"document number {i} " * 3, "contributor": f"c{i % 3}"} for i in range(50)]
    path = write_jsonl(tmp_path / "c.jsonl", [json.dumps(r) for r in rows])
    streamed = Corpus.from_jsonl(path)
    in_memory = Corpus.from_jsonl(path, in_memory=True)
    assert streamed._documents is None
    assert streamed.content_hash == in_memory.content_hash == Corpus.from_records(rows).content_hash
    assert [d.text for d in streamed[10:13]] == [r["text"] for r in rows[10:13]]
    assert streamed[-1] == in_memory[-1]
    from openattrib.text import SpanIndex

    a = SpanIndex.build(streamed, tmp_path / "a", progress=False, memory_budget=2000)
    b = SpanIndex.build(in_memory, tmp_path / "b", progress=False)
    assert a.count("number 4") == b.count("number 4") == 11 * 3
    lines = path.read_text().splitlines()
    lines[7] = lines[7].replace("number 7", "number 8")
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValidationError, match="changed after the corpus was loaded"):
        SpanIndex.build(streamed, tmp_path / "c", progress=False)
    assert not (tmp_path / "c").exists()
