"""openattrib.text.SpanIndex against infini-gram 2.6.0 on the same >= 100 MB corpus.

Corpus: the ``.py``, ``.txt`` and ``.rst`` files of the Python standard library and of the
packages installed in this interpreter's environment (read from disk, nothing downloaded;
each file is one document, its top-level folder the contributor; PSF and various OSI
licences; the files are read, not redistributed). Files are taken in sorted order until
``--size-mb`` of text is collected; no text is repeated.

Two tokenisers, each compared build against build on the same JSONL file:

- **bytes** (UTF-8 bytes, ``u8``): infini-gram's indexer tokenises itself
  (``python -m infini_gram.indexing --token_dtype u8`` without ``--tokenizer``), so both
  whole builds read the JSONL, tokenise, sort and write.
- **BPE** (a byte-level BPE, vocabulary 16,000, ``u16``, trained here with HuggingFace
  ``tokenizers``): infini-gram's indexer only accepts ``--tokenizer gpt2|llama|olmo``, which
  it loads with ``transformers.AutoTokenizer.from_pretrained`` from the Hugging Face Hub
  (a download, impossible offline). Its whole build is therefore run with that one call
  redirected to ``PreTrainedTokenizerFast(tokenizer_file=<the local tokenizer.json>)`` (the
  rest of its code unchanged: it tokenises each document with ``tokenizer.encode``; for
  ``gpt2`` it would use the slower Python tokenizer, so the redirect favours it). Its
  suffix-array step alone (Rust ``make-part/merge/concat``) is also timed on the token
  file openattrib wrote, next to openattrib's sort of the same file.

Both sides single-threaded (``--cpus 1``, ``RAYON_NUM_THREADS=1``,
``TOKENIZERS_PARALLELISM=false``); each build runs in its own process under
``/usr/bin/time -v`` (wall, CPU, peak RSS). Queries run in this process (infini-gram's
engine starts two threads per shard search; it cannot be told not to): ``count`` of the
first 20 tokens and ``attribute`` (min_len 8, max_count 1000) of ``--queries`` outputs of
200 tokens, windows of corpus documents with 5% of their tokens replaced at random.
Answers are compared too.

Run::

    flock /work/bench.lock nice -n 5 /usr/bin/time -v python benchmarks/text_index_vs_infinigram.py --size-mb 100 --workdir /tmp/textbench
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

# infini-gram's indexer with its Hub tokenizer loader pointed at a local tokenizer.json
_LOCAL_TOKENIZER_DRIVER = """
import sys
import transformers
local = sys.argv.pop(1)
transformers.AutoTokenizer.from_pretrained = (
    lambda *a, **k: transformers.PreTrainedTokenizerFast(tokenizer_file=local)
)
from infini_gram import indexing
indexing.main()
"""


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


def timed(cmd: list[str]) -> dict[str, float]:
    """Wall and CPU seconds and peak RSS (bytes) of a command under /usr/bin/time -v."""
    start = time.perf_counter()
    run = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if run.returncode:
        sys.exit(f"command failed: {' '.join(cmd)}\n{run.stdout[-2000:]}\n{run.stderr[-4000:]}")

    def field(name: str) -> float:
        return float(re.search(rf"{re.escape(name)}: ([\d.]+)", run.stderr).group(1))

    cpu = field("User time (seconds)") + field("System time (seconds)")
    return {"wall": wall, "cpu": cpu, "peak": field("Maximum resident set size (kbytes)") * 1024}


def folder_bytes(path: Path, names: list[str] | None = None) -> int:
    return sum(
        f.stat().st_size
        for f in path.iterdir()
        if f.is_file() and (names is None or f.name in names)
    )


def infinigram_build(
    data_dir: Path, out: Path, dtype: str, tokenizer: Path | None, work: Path
) -> dict[str, float]:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    common = ["--data_dir", str(data_dir), "--save_dir", str(out), "--token_dtype", dtype,
              "--cpus", "1", "--mem", "8", "--ulimit", str(min(hard, 65536))]  # fmt: skip
    if tokenizer is None:
        return timed([sys.executable, "-m", "infini_gram.indexing", *common])
    driver = work / "infinigram_local_tokenizer.py"
    driver.write_text(_LOCAL_TOKENIZER_DRIVER, encoding="utf-8")
    return timed([sys.executable, str(driver), str(tokenizer), *common, "--tokenizer", "gpt2"])


def our_build(corpus: Path, out: Path, tokenizer: str, budget: str) -> dict[str, float]:
    code = (
        "from openattrib.text import Corpus, SpanIndex; "
        f"c = Corpus.from_jsonl({str(corpus)!r}, doc_id='id'); "
        f"SpanIndex.build(c, {str(out)!r}, tokenizer={tokenizer!r}, "
        f"memory_budget={budget!r}, progress=False)"
    )
    return timed([sys.executable, "-c", code])


def sort_only(tokenized: Path, width: int, work: Path) -> tuple[dict[str, float], bytes]:
    """openattrib's suffix-array step alone on a token file (returns the table too)."""
    table = work / "sa_only.table"
    code = (
        "from pathlib import Path; from openattrib.text._shard import write_suffix_table; "
        f"write_suffix_table(Path({str(tokenized)!r}), Path({str(table)!r}), {width})"
    )
    measured = timed([sys.executable, "-c", code])
    data = table.read_bytes()
    table.unlink()
    return measured, data


def queries(index, engine, n: int, length: int, vocab: tuple[int, int], seed: int = 0):
    """Latencies (s) of count and attribute on both sides, and whether the answers agree."""
    rng = np.random.default_rng(seed)
    outputs = []
    while len(outputs) < n:
        doc = index.document_tokens(int(rng.integers(index.n_documents)))
        if len(doc) < length:
            continue
        begin = int(rng.integers(len(doc) - length + 1))
        window = doc[begin : begin + length].copy()
        swap = rng.random(length) < 0.05
        window[swap] = rng.integers(vocab[0], vocab[1], swap.sum())
        outputs.append(window)
    base = np.cumsum([0] + [s.size for s in index.shards])  # shard offsets in one joined file
    times = {k: [] for k in ("count ours", "count theirs", "attribute ours", "attribute theirs")}
    agree_count = agree_attribute = 0
    for out in outputs:
        ids = [int(t) for t in out]
        start = time.perf_counter()
        mine = index.count(out[:20])
        times["count ours"].append(time.perf_counter() - start)
        start = time.perf_counter()
        theirs = engine.count(ids[:20])["count"]
        times["count theirs"].append(time.perf_counter() - start)
        agree_count += mine == theirs
        start = time.perf_counter()
        spans = index.attribute(out, min_len=8, max_count=1000)
        times["attribute ours"].append(time.perf_counter() - start)
        start = time.perf_counter()
        response = engine.attribute(ids, [], 8, 1000, False)
        times["attribute theirs"].append(time.perf_counter() - start)
        mine = [
            (s.start, s.end, s.count, sorted(int(base[o.shard]) + o.pointer for o in s.occurrences))
            for s in spans
        ]
        theirs = [
            (s["l"], s["r"], s["count"], sorted(d["ptr"] for d in s["docs"]))
            for s in response["spans"]
        ]
        agree_attribute += mine == theirs
    return times, agree_count, agree_attribute


def compare(name: str, args: argparse.Namespace, work: Path, corpus: Path, tokenizer: Path | None):
    from infini_gram.engine import InfiniGramEngine

    from openattrib.text import SpanIndex

    dtype, width = ("u8", 1) if tokenizer is None else ("u16", 2)
    ours, theirs = work / f"openattrib_{name}", work / f"infinigram_{name}"
    for folder in (ours, theirs):
        subprocess.run(["rm", "-rf", str(folder)], check=True)
    data_dir = work / "jsonl"  # infini-gram indexes every *.json* file under a folder
    data_dir.mkdir(exist_ok=True)
    if not (data_dir / corpus.name).exists():
        (data_dir / corpus.name).symlink_to(corpus)

    our = our_build(
        corpus, ours, "bytes" if tokenizer is None else str(tokenizer), args.memory_budget
    )
    their = infinigram_build(data_dir, theirs, dtype, tokenizer, work)
    index = SpanIndex.open(ours)
    n_shards = len(index.shards)
    # the suffix-array step alone, both sides, on the very token file infini-gram built
    our_sort, table = sort_only(theirs / "tokenized.0", width, work)
    sorted_dir = work / f"infinigram_{name}_sort_only"
    subprocess.run(["rm", "-rf", str(sorted_dir)], check=True)
    sorted_dir.mkdir()
    for f in ("tokenized.0", "offset.0"):
        os.link(theirs / f, sorted_dir / f)
    empty = work / "empty_data"
    empty.mkdir(exist_ok=True)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    their_sort = timed(
        [sys.executable, "-m", "infini_gram.indexing", "--data_dir", str(empty), "--save_dir",
         str(sorted_dir), "--token_dtype", dtype, "--cpus", "1", "--mem", "8", "--ulimit",
         str(min(hard, 65536))]
    )  # fmt: skip
    same_sort = table == (sorted_dir / "table.0").read_bytes()
    subprocess.run(["rm", "-rf", str(sorted_dir)], check=True)
    same_files = n_shards == 1 and all(
        (ours / f).read_bytes() == (theirs / f).read_bytes()
        for f in ("tokenized.0", "table.0", "offset.0")
    )
    engine = InfiniGramEngine(
        index_dir=str(theirs),
        eos_token_id=0,
        vocab_size=255 if tokenizer is None else 65535,
        token_dtype=dtype,
    )
    vocab = (32, 127) if tokenizer is None else (0, 16000)
    times, agree_count, agree_attribute = queries(index, engine, args.queries, args.length, vocab)
    n_tokens = index.n_tokens + index.n_documents  # infini-gram counts separators as tokens
    our_bytes = folder_bytes(ours)
    their_bytes = folder_bytes(theirs, ["tokenized.0", "table.0", "offset.0"])

    print(f"\n=== {name}: {index.n_documents} documents, {index.n_tokens} tokens ({dtype}), "
          f"{len(index.contributors)} contributors; openattrib {n_shards} shard(s) "
          f"(memory_budget {args.memory_budget}), infini-gram 1 shard")  # fmt: skip
    print(f"{'':34}{'openattrib':>14}{'infini-gram':>14}{'ratio':>9}")
    rows = [
        ("whole build, wall (s)", our["wall"], their["wall"]),
        ("whole build, CPU (s)", our["cpu"], their["cpu"]),
        ("suffix-array step alone, wall (s)", our_sort["wall"], their_sort["wall"]),
        ("suffix-array step alone, CPU (s)", our_sort["cpu"], their_sort["cpu"]),
        ("peak build RSS (MB)", our["peak"] / 1e6, their["peak"] / 1e6),
        ("index size (MB)", our_bytes / 1e6, their_bytes / 1e6),
        ("peak RSS / index size", our["peak"] / our_bytes, their["peak"] / their_bytes),
        ("bytes per token", our_bytes / n_tokens, their_bytes / n_tokens),
    ]
    for what in ("count", "attribute"):
        for q in (50, 99):
            a = np.percentile(times[f"{what} ours"], q) * 1e3
            b = np.percentile(times[f"{what} theirs"], q) * 1e3
            rows.append((f"{what} p{q} (ms)", a, b))
    for label, a, b in rows:
        print(f"{label:34}{a:14.3f}{b:14.3f}{a / b:9.3f}")
    print(f"token, suffix-array and offset files identical byte for byte: {same_files}")
    print(f"suffix-array step alone gives infini-gram's table: {same_sort}")
    print(
        f"answers equal: count {agree_count}/{args.queries}, attribute {agree_attribute}/{args.queries}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=float, default=100)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/textbench"))
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--length", type=int, default=200)
    parser.add_argument("--memory-budget", default="1GB", help="openattrib's per-shard budget")
    parser.add_argument("--tokenizers", default="bytes,bpe", help="which comparisons to run")
    args = parser.parse_args()
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    corpus, tokenizer = work / "corpus.jsonl", work / "tokenizer.json"
    if not corpus.exists():
        size = assemble(corpus, args.size_mb)
        print(f"corpus: {size / 1e6:.1f} MB of text -> {corpus}")
    if not tokenizer.exists():
        start = time.perf_counter()
        train_tokenizer(corpus, tokenizer)
        print(f"tokenizer trained in {time.perf_counter() - start:.1f} s")
    print(f"load average before: {os.getloadavg()}")
    for name in args.tokenizers.split(","):
        compare(name, args, work, corpus, None if name == "bytes" else tokenizer)
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
