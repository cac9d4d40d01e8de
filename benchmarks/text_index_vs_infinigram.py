"""openattrib.text.SpanIndex against infini-gram 2.6.0 on the same >= 100 MB corpus and tokens.

Corpus: the ``.py``, ``.txt`` and ``.rst`` files of the Python standard library and of the
packages installed in this interpreter's environment (read from disk, nothing downloaded;
each file is one document, its top-level folder the contributor; PSF and various OSI
licences; the files are read, not redistributed). Files are taken in sorted order until
``--size-mb`` of text is collected; no text is repeated.

Tokens: a byte-level BPE tokenizer (HuggingFace ``tokenizers``, vocabulary 16,000, so
2-byte token ids) trained here on the corpus, so both indexes hold exactly the same ``u16``
token ids. infini-gram's indexer only tokenises with downloadable tokenizers, so its
suffix-array step (``python -m infini_gram.indexing``, Rust ``make-part/merge/concat``,
``--cpus 1``) runs on the token files openattrib wrote (its shards concatenated into one);
its build time is that step only, while openattrib's includes reading and checking the
JSONL corpus, tokenising, sorting and hashing the files.

Each build runs in its own process under ``/usr/bin/time -v`` (peak RSS). Queries run in
this process, single-threaded where the libraries allow it (infini-gram's engine starts two
threads per shard search; it cannot be told not to): ``count`` of the first 20 tokens and
``attribute`` (min_len 8, max_count 1000) of 1,000 outputs of 200 tokens, windows of corpus
documents with 5% of their tokens replaced at random. Answers are compared too.

Run::

    nice -n 10 python benchmarks/text_index_vs_infinigram.py --size-mb 100 --workdir /tmp/textbench
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "RAYON_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import numpy as np  # noqa: E402


def assemble(out: Path, size_mb: float) -> int:
    roots = [Path(sysconfig.get_paths()["stdlib"]), Path(sysconfig.get_paths()["purelib"])]
    total, n = 0, 0
    with open(out, "w", encoding="utf-8") as handle:
        for root in roots:
            for path in sorted(root.rglob("*")):
                if path.suffix not in (".py", ".txt", ".rst") or not path.is_file():
                    continue
                try:
                    text = path.read_text(encoding="utf-8")
                except (UnicodeDecodeError, OSError):
                    continue
                if not text.strip():
                    continue
                owner = path.relative_to(root).parts[0]
                record = {"text": text, "contributor": f"{root.name}/{owner}", "id": str(path)}
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                total += len(text.encode("utf-8"))
                n += 1
                if total >= size_mb * 1e6:
                    return total
    return total


def train_tokenizer(corpus: Path, out: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=16000, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )

    def texts():
        with open(corpus, encoding="utf-8") as handle:
            for line in handle:
                yield json.loads(line)["text"]

    tok.train_from_iterator(texts(), trainer=trainer)
    tok.save(str(out))


def timed(cmd: list[str], cwd: Path | None = None) -> tuple[float, int]:
    """Wall time and peak RSS (bytes) of a command under /usr/bin/time -v."""
    start = time.perf_counter()
    run = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, cwd=cwd)
    wall = time.perf_counter() - start
    if run.returncode:
        sys.exit(f"command failed: {' '.join(cmd)}\n{run.stdout[-2000:]}\n{run.stderr[-4000:]}")
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr).group(1))
    return wall, peak_kb * 1024


def folder_bytes(path: Path, names: list[str] | None = None) -> int:
    return sum(
        f.stat().st_size
        for f in path.iterdir()
        if f.is_file() and (names is None or f.name in names)
    )


def percentiles(seconds: list[float]) -> str:
    ms = np.array(seconds) * 1e3
    return f"p50 {np.percentile(ms, 50):8.3f} ms  p99 {np.percentile(ms, 99):8.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=float, default=100)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/textbench"))
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--length", type=int, default=200)
    parser.add_argument("--memory-budget", default="1GB", help="openattrib's per-shard budget")
    args = parser.parse_args()
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    corpus, tokenizer = work / "corpus.jsonl", work / "tokenizer.json"
    ours, theirs = work / "openattrib_index", work / "infinigram_index"
    if not corpus.exists():
        size = assemble(corpus, args.size_mb)
        print(f"corpus: {size / 1e6:.1f} MB of text -> {corpus}")
    if not tokenizer.exists():
        start = time.perf_counter()
        train_tokenizer(corpus, tokenizer)
        print(f"tokenizer trained in {time.perf_counter() - start:.1f} s")
    for folder in (ours, theirs):
        if folder.exists():
            subprocess.run(["rm", "-rf", str(folder)], check=True)

    build = (
        "from openattrib.text import Corpus, SpanIndex; "
        f"c = Corpus.from_jsonl({str(corpus)!r}, doc_id='id'); "
        f"SpanIndex.build(c, {str(ours)!r}, tokenizer={str(tokenizer)!r}, "
        f"memory_budget={args.memory_budget!r}, progress=False)"
    )
    our_time, our_peak = timed([sys.executable, "-c", build])
    _, baseline = timed([sys.executable, "-c", "import openattrib.text"])
    theirs.mkdir()

    n_shards = len(
        list(ours.glob("tokenized.*"))
    )  # infini-gram indexes the same tokens as one shard
    with open(theirs / "tokenized.0", "wb") as joined, open(theirs / "offset.0", "wb") as offsets:
        position = 0
        for s in range(n_shards):
            data = (ours / f"tokenized.{s}").read_bytes()
            offs = np.fromfile(ours / f"offset.{s}", dtype="<u8") + position
            joined.write(data)
            offsets.write(offs.tobytes())
            position += len(data)
    empty = work / "empty_data"
    empty.mkdir(exist_ok=True)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    their_time, their_peak = timed(
        [sys.executable, "-m", "infini_gram.indexing", "--data_dir", str(empty), "--save_dir",
         str(theirs), "--token_dtype", "u16", "--cpus", "1", "--mem", "8", "--ulimit",
         str(min(hard, 65536))]
    )  # fmt: skip
    # the suffix-array step alone, on the very file infini-gram sorted (same input, same output)
    sort_only = (
        "from pathlib import Path; from openattrib.text._shard import write_suffix_table; "
        f"write_suffix_table(Path({str(theirs / 'tokenized.0')!r}), Path({str(work / 'sa_only.table')!r}), 2)"
    )
    sort_time, sort_peak = timed([sys.executable, "-c", sort_only])
    sort_same = (work / "sa_only.table").read_bytes() == (theirs / "table.0").read_bytes()
    (work / "sa_only.table").unlink()
    same_table = (
        n_shards == 1 and (ours / "table.0").read_bytes() == (theirs / "table.0").read_bytes()
    )

    from infini_gram.engine import InfiniGramEngine

    from openattrib.text import SpanIndex

    index = SpanIndex.open(ours)
    engine = InfiniGramEngine(
        index_dir=str(theirs), eos_token_id=0, vocab_size=65535, token_dtype="u16"
    )
    n_tokens = index.n_tokens + index.n_documents  # infini-gram counts separators as tokens
    our_bytes = folder_bytes(ours)
    their_bytes = folder_bytes(theirs, ["tokenized.0", "table.0", "offset.0"])
    base = np.cumsum([0] + [s.size for s in index.shards])  # shard byte offsets in the joined file

    rng = np.random.default_rng(0)
    outputs = []
    while len(outputs) < args.queries:
        doc = index.document_tokens(int(rng.integers(index.n_documents)))
        if len(doc) < args.length:
            continue
        begin = int(rng.integers(len(doc) - args.length + 1))
        window = doc[begin : begin + args.length].copy()
        swap = rng.random(args.length) < 0.05
        window[swap] = rng.integers(0, 16000, swap.sum())
        outputs.append(window)
    counts_ours, counts_theirs, att_ours, att_theirs = [], [], [], []
    t_count_ours, t_count_theirs, t_att_ours, t_att_theirs = [], [], [], []
    for out in outputs:
        head = out[:20]
        ids = [int(t) for t in out]
        start = time.perf_counter()
        counts_ours.append(index.count(head))
        t_count_ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        counts_theirs.append(engine.count(ids[:20])["count"])
        t_count_theirs.append(time.perf_counter() - start)
        start = time.perf_counter()
        spans = index.attribute(out, min_len=8, max_count=1000)
        t_att_ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        response = engine.attribute(ids, [], 8, 1000, False)
        t_att_theirs.append(time.perf_counter() - start)
        att_ours.append(
            [
                (
                    s.start,
                    s.end,
                    s.count,
                    sorted(int(base[o.shard]) + o.pointer for o in s.occurrences),
                )
                for s in spans
            ]
        )
        att_theirs.append(
            [
                (s["l"], s["r"], s["count"], sorted(d["ptr"] for d in s["docs"]))
                for s in response["spans"]
            ]
        )
    agree_count = sum(a == b for a, b in zip(counts_ours, counts_theirs, strict=True))
    agree_att = sum(a == b for a, b in zip(att_ours, att_theirs, strict=True))

    print(
        f"\ncorpus: {index.n_documents} documents, {index.n_tokens} tokens (u16), {len(index.contributors)} contributors"
    )
    print(
        f"openattrib shards: {n_shards} (memory_budget {args.memory_budget}); infini-gram: 1 shard"
    )
    if n_shards == 1:
        print(f"suffix tables identical byte for byte: {same_table}")
    print(f"{'':24}{'openattrib':>16}{'infini-gram':>16}{'ratio':>10}")
    rows = [
        ("build time (s)", our_time, their_time),
        ("peak build RSS (MB)", our_peak / 1e6, their_peak / 1e6),
        ("index size (MB)", our_bytes / 1e6, their_bytes / 1e6),
        ("bytes per token", our_bytes / n_tokens, their_bytes / n_tokens),
    ]
    for name, a, b in rows:
        print(f"{name:24}{a:16.3f}{b:16.3f}{a / b:10.3f}")
    print(
        f"peak build RSS / finished index: openattrib {our_peak / our_bytes:.2f}, infini-gram {their_peak / their_bytes:.2f}"
    )
    print(
        f"interpreter + `import openattrib.text` alone: {baseline / 1e6:.1f} MB; openattrib build "
        f"above that: {(our_peak - baseline) / 1e6:.1f} MB = {(our_peak - baseline) / our_bytes:.2f} x the index"
    )
    print(
        f"suffix-array step alone on infini-gram's input (libdivsufsort via pydivsufsort vs "
        f"infini-gram's Rust indexer): {sort_time:.1f} s vs {their_time:.1f} s (ratio "
        f"{sort_time / their_time:.3f}), peak RSS {sort_peak / 1e6:.1f} MB vs {their_peak / 1e6:.1f} MB "
        f"(ratio {sort_peak / their_peak:.3f}); identical table: {sort_same}"
    )
    for name, a, b in [
        ("count", t_count_ours, t_count_theirs),
        ("attribute", t_att_ours, t_att_theirs),
    ]:
        print(f"{name:10} openattrib  {percentiles(a)}")
        print(f"{name:10} infini-gram {percentiles(b)}")
        print(
            f"{name:10} ratio p50 {np.percentile(a, 50) / np.percentile(b, 50):.3f}  p99 {np.percentile(a, 99) / np.percentile(b, 99):.3f}"
        )
    print(
        f"answers equal: count {agree_count}/{len(outputs)}, attribute {agree_att}/{len(outputs)}"
    )


if __name__ == "__main__":
    main()
