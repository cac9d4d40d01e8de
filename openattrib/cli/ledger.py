"""``openattrib ledger``: append to, inspect, prove, sign and export the verifiable ledger."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .._io import atomic_write_text, canonical_json, check_output_path
from ..errors import ValidationError, VerificationError
from ._groups import command_group

__all__ = ["add_ledger_parser"]


def add_ledger_parser(commands: Any) -> None:
    """Add the ``ledger`` command and its sub-commands to an argparse sub-parsers object."""
    sub = command_group(
        commands,
        "ledger",
        summary="verifiable append-only ledger of runs and allocations",
        description="Append runs and allocations to a Merkle-tree ledger (RFC 6962), prove "
        "inclusion and consistency, sign C2SP checkpoints and export on-chain claims.",
    )

    p = sub.add_parser("append", help="append an attribution run and/or an allocation")
    p.add_argument("ledger", type=Path, help="ledger file (created if missing)")
    p.add_argument("--run", type=Path, help="attribution JSON written by Attribution.save")
    p.add_argument("--allocation", type=Path, help="allocation JSON written by Allocation.save")
    p.add_argument("--for-run", type=int, help="index of the run entry the allocation came from")
    p.add_argument("--origin", help="log name, only when creating the ledger")
    p.set_defaults(handler=run_append)

    p = sub.add_parser(
        "register",
        help="register contributors' submitted rows (digests and Merkle roots, not the data)",
        description="Register each contributor's rows of a CSV file in the ledger's "
        "contribution registry, in the order the contributors first appear in the file (their "
        "submission order). Re-registering the same rows is a no-op; rows someone else "
        "registered earlier are reported.",
    )
    p.add_argument("ledger", type=Path, help="ledger file (created if missing)")
    p.add_argument("--data", required=True, type=Path, help="the submitted rows (CSV)")
    p.add_argument("--target", required=True, help="name of the label column")
    p.add_argument("--contributor", required=True, help="name of the contributor column")
    p.add_argument("--only", action="append", help="register only this contributor (repeatable)")
    p.add_argument("--origin", help="log name, only when creating the ledger")
    p.set_defaults(handler=run_register)

    p = sub.add_parser("show", help="print the ledger summary or one entry")
    p.add_argument("ledger", type=Path)
    p.add_argument("index", type=int, nargs="?", help="entry to print (default: summary)")
    p.set_defaults(handler=run_show)

    p = sub.add_parser("verify", help="recompute and check the whole ledger")
    p.add_argument("ledger", type=Path)
    p.add_argument("--checkpoint", type=Path, help="a published checkpoint the ledger must match")
    p.add_argument("--key", type=Path, help="the log's public key PEM (checks signatures)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler=run_verify)

    p = sub.add_parser("prove", help="inclusion proof of one entry (JSON)")
    p.add_argument("ledger", type=Path)
    p.add_argument("index", type=int)
    p.add_argument("--size", type=int, help="tree size to prove against (default: current)")
    p.add_argument("--out", type=Path, help="write the proof here instead of stdout")
    p.set_defaults(handler=run_prove)

    p = sub.add_parser("checkpoint", help="sign and record the current tree head")
    p.add_argument("ledger", type=Path)
    p.add_argument("--key", type=Path, required=True, help="Ed25519 private key PEM")
    p.add_argument("--origin", help="log name in the checkpoint (default: the ledger's)")
    p.add_argument(
        "--state",
        type=Path,
        help="signer state file: the last head this key signed (default: KEY.state)",
    )
    p.add_argument("--out", type=Path, help="write the checkpoint here instead of stdout")
    p.set_defaults(handler=run_checkpoint)

    p = sub.add_parser("consistency", help="consistency proof between two tree sizes (JSON)")
    p.add_argument("ledger", type=Path)
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--old-size", type=int, help="the older tree size")
    group.add_argument("--old", type=Path, help="an older signed checkpoint to check against")
    p.add_argument("--new-size", type=int, help="the newer tree size (default: current)")
    p.add_argument("--key", type=Path, help="public key PEM for --old (required with it)")
    p.add_argument("--out", type=Path, help="write the proof here instead of stdout")
    p.set_defaults(handler=run_consistency)

    p = sub.add_parser("export-evm", help="OpenZeppelin Merkle tree + proofs for on-chain claims")
    p.add_argument("allocation", type=Path, help="allocation JSON written by Allocation.save")
    p.add_argument(
        "--addresses", type=Path, required=True, help="CSV (contributor,address) or JSON object"
    )
    p.add_argument("--out", type=Path, required=True, help="claims JSON to write")
    p.add_argument("--include-zero", action="store_true", help="keep zero-amount claimants")
    p.set_defaults(handler=run_export_evm)

    p = sub.add_parser(
        "reproduce", help="recompute a recorded run from its recipe and check its result hash"
    )
    p.add_argument("ledger", type=Path)
    p.add_argument("index", type=int, help="index of the run entry")
    p.add_argument("--data", required=True, type=Path, help="the training CSV the run used")
    p.add_argument("--valid", type=Path, help="the validation CSV, if the run used one")
    p.add_argument("--n-jobs", type=int, default=1, help="does not change the numbers")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler=run_reproduce)

    p = sub.add_parser("keygen", help="create an Ed25519 signing key (PEM) for checkpoints")
    p.add_argument("--out", type=Path, required=True, help="private key PEM (public: OUT.pub)")
    p.add_argument("--name", help="also print the note verifier key under this log name")
    p.add_argument("--force", action="store_true", help="overwrite an existing key file")
    p.set_defaults(handler=run_keygen)


# ------------------------------------------------------------------------- helpers
def _emit(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        atomic_write_text(out, text if text.endswith("\n") else text + "\n")


def _json(obj: Any) -> str:
    # ASCII only: a stored name holding terminal controls (C1 such as U+009B included) is
    # printed escaped, never interpreted by the terminal
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=True)


def _open(path: Path, create: bool = False, origin: str | None = None) -> Any:
    from ..ledger import Ledger

    return Ledger(path, create=create, origin=origin)


def _open_read_only(path: Path) -> Any:
    """Open for reading only: never creates, changes or converts the file (or its folder)."""
    from ..ledger import Ledger

    return Ledger(path, create=False, read_only=True)


def _read_checkpoint(path: Path, key: Any) -> Any:
    from .._io import read_text
    from ..ledger import verify_checkpoint

    return verify_checkpoint(read_text(path, "checkpoint file", limit=1 << 20), key)


def _load_run(path: Path) -> Any:
    from ..result import Attribution

    return Attribution.load(path)


def _load_allocation(path: Path) -> Any:
    from ..rewards import Allocation

    return Allocation.load(path)


# ------------------------------------------------------------------------ handlers
def run_append(args: argparse.Namespace) -> int:
    if args.run is None and args.allocation is None:
        raise ValidationError(
            "ledger append needs --run RESULT.json and/or --allocation ALLOC.json"
        )
    if args.run is not None and args.for_run is not None:
        raise ValidationError("--for-run is only for an allocation appended without --run")
    attribution = _load_run(args.run) if args.run is not None else None
    allocation = _load_allocation(args.allocation) if args.allocation is not None else None
    if args.for_run is not None and not args.ledger.exists():
        raise ValidationError(f"--for-run {args.for_run}: the ledger {args.ledger} does not exist")
    created = not args.ledger.exists()
    try:
        lines = _append(args, attribution, allocation)
    except BaseException:
        if created:  # a refused first append leaves no new ledger file behind
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{args.ledger}{suffix}").unlink(missing_ok=True)
        raise
    _emit("\n".join(lines), None)
    return 0


def _append(args: argparse.Namespace, attribution: Any, allocation: Any) -> list[str]:
    with _open(args.ledger, create=True, origin=args.origin) as led:
        if attribution is not None:
            entry = led.append_run(attribution, allocation)
            lines = [f"appended run as entry {entry.index} (leaf {entry.leaf_hash.hex()})"]
            if allocation is not None:
                alloc_entry = led.entry(entry.index + 1)
                lines.append(
                    f"appended allocation as entry {alloc_entry.index} "
                    f"(leaf {alloc_entry.leaf_hash.hex()})"
                )
        else:
            entry = led.append_allocation(allocation, run=args.for_run)
            lines = [f"appended allocation as entry {entry.index} (leaf {entry.leaf_hash.hex()})"]
        lines.append(f"ledger size {led.size}, root {led.root().hex()}")
    return lines


def run_register(args: argparse.Namespace) -> int:
    from ..data import Dataset

    data = Dataset.from_csv(args.data, target=args.target, contributor=args.contributor)
    groups = data.groups()
    names = list(groups) if not args.only else list(dict.fromkeys(args.only))
    unknown = [name for name in names if name not in groups]
    if unknown:
        raise ValidationError(
            f"--only names contributor(s) {unknown} that have no rows in {args.data}; "
            f"known: {list(groups)[:10]}"
        )
    lines = []
    with _open(args.ledger, create=True, origin=args.origin) as led:
        for name in names:
            reg = led.append_contribution(name, data.subset(groups[name]))
            state = "registered" if reg.created else "already registered"
            line = (
                f"{state} {name}: {reg.n_rows} rows, entry {reg.index}, root {reg.rows_root.hex()}"
            )
            for index, owner, count in reg.collisions:
                line += f"; {count} rows were registered earlier by {owner} (entry {index})"
            lines.append(line)
        lines.append(f"ledger size {led.size}, root {led.root().hex()}")
    _emit("\n".join(lines), None)
    return 0


def run_show(args: argparse.Namespace) -> int:
    with _open_read_only(args.ledger) as led:
        if args.index is None:
            summary = {
                "path": str(led.path),
                "origin": led.origin,
                "size": led.size,
                "root": led.root().hex(),
                "checkpoints": len(led.checkpoints()),
                "kinds": led.kinds(),
            }
            _emit(_json(summary), None)
        else:
            entry = led.entry(args.index)
            _emit(
                _json(
                    {
                        "index": entry.index,
                        "leaf_hash": entry.leaf_hash.hex(),
                        "record": entry.record,
                    }
                ),
                None,
            )
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from ..ledger import load_public_key

    key = load_public_key(args.key) if args.key is not None else None
    if args.checkpoint is not None and key is None:
        raise ValidationError("--checkpoint needs --key PUBLIC.pem to check its signature")
    cp = _read_checkpoint(args.checkpoint, key) if args.checkpoint is not None else None
    with _open_read_only(args.ledger) as led:
        report = led.verify(public_key=key, progress=not args.no_progress)
        report.raise_if_bad()
        lines = [report.summary()]
        if cp is not None:
            led.check_checkpoint(cp)
            lines.append(f"checkpoint at size {cp.size}: signature valid, ledger matches its root")
    _emit("\n".join(lines), None)
    return 0


def run_prove(args: argparse.Namespace) -> int:
    if args.out is not None:
        check_output_path(args.out)
    with _open_read_only(args.ledger) as led:
        proof = led.inclusion_proof(args.index, size=args.size)
        entry = led.entry(args.index)
        document = {
            "proof": proof.to_dict(),
            "root": led.root(proof.size).hex(),
            "origin": led.origin,
            "entry": entry.data.decode("utf-8"),
        }
    _emit(_json(document), args.out)
    return 0


def run_checkpoint(args: argparse.Namespace) -> int:
    if args.out is not None:
        check_output_path(args.out)
    from ..ledger.keys import load_signing_key, signer_state_path

    key = load_signing_key(args.key)  # a bad key path fails before the ledger is opened
    state = signer_state_path(args.key, args.state)
    with _open(args.ledger, create=False) as led:
        cp = led.checkpoint(key, origin=args.origin, state=state)
    _emit(cp.text, args.out)
    return 0


def run_consistency(args: argparse.Namespace) -> int:
    from ..ledger import Checkpoint, load_public_key, verify_checkpoint_consistency

    if args.out is not None:
        check_output_path(args.out)
    with _open_read_only(args.ledger) as led:
        new_size = led.size if args.new_size is None else args.new_size
        if args.old is not None:
            if args.key is None:
                raise ValidationError("--old needs --key PUBLIC.pem to check the checkpoint")
            old = _read_checkpoint(args.old, load_public_key(args.key))
            proof = led.consistency_proof(old.size, new_size)
            new = Checkpoint(old.origin, new_size, led.root(new_size))
            if not verify_checkpoint_consistency(old, new, proof):
                raise VerificationError(
                    f"the ledger at size {new_size} is NOT consistent with the checkpoint at "
                    f"size {old.size}: the log was rewritten"
                )
            old_size = old.size
        else:
            old_size = args.old_size
            proof = led.consistency_proof(old_size, new_size)
        document = {
            "proof": proof.to_dict(),
            "old_root": led.root(old_size).hex(),
            "new_root": led.root(new_size).hex(),
            "origin": led.origin,
        }
    _emit(_json(document), args.out)
    return 0


def run_export_evm(args: argparse.Namespace) -> int:
    from ..ledger.evm import export_allocation, read_address_map

    check_output_path(args.out)
    allocation = _load_allocation(args.allocation)
    claims = export_allocation(
        allocation, read_address_map(args.addresses), include_zero=args.include_zero
    )
    atomic_write_text(args.out, canonical_json(claims).decode("utf-8") + "\n")
    _emit(
        f"wrote {len(claims['claims'])} claims with Merkle root {claims['root']} to {args.out}",
        None,
    )
    return 0


def run_keygen(args: argparse.Namespace) -> int:
    from ..ledger import generate_signing_key, note_verifier_key, save_signing_key

    if args.out.exists() and not args.force:
        raise ValidationError(f"{args.out} exists; pass --force to overwrite the key")
    check_output_path(args.out)
    key = generate_signing_key()
    public_path = save_signing_key(key, args.out)
    lines = [f"wrote private key {args.out} (keep it secret) and public key {public_path}"]
    if args.name:
        lines.append(f"verifier key: {note_verifier_key(args.name, key)}")
    _emit("\n".join(lines), None)
    return 0


def run_reproduce(args: argparse.Namespace) -> int:
    from ..data import Dataset
    from ..errors import ValidationError
    from ..recipe import compute, depends_on_time, prepare_data, read_data
    from ._ownership import ownership_of

    with _open_read_only(args.ledger) as led:
        entry = led.entry(args.index)
        record = entry.record
        recipe = (record.get("provenance") or {}).get("recipe") or {}
        ownership = None
        if recipe.get("ownership") is not None:  # valued on owned data: same registry
            raw = Dataset.from_csv(
                args.data, target=recipe["target"], contributor=recipe.get("contributor")
            )
            raw_valid = (
                Dataset.from_csv(args.valid, target=recipe["target"]) if args.valid else None
            )
            ownership = ownership_of(recipe, raw, raw_valid, led)
    if record.get("kind") != "run":
        raise ValidationError(f"entry {args.index} is a {record.get('kind')!r} entry, not a run")
    recipe = (record.get("provenance") or {}).get("recipe")
    if not recipe:
        raise ValidationError(
            f"run {args.index} has no recipe in its provenance (it was not produced by "
            "openattrib value / demo / compute); it cannot be recomputed automatically"
        )
    data, valid = read_data(recipe, args.data, args.valid)
    train, valid = prepare_data(recipe, data, valid)
    if train.content_hash() != record.get("dataset_hash"):
        raise ValidationError(
            f"{args.data} does not give the recorded training data: content hash "
            f"{train.content_hash()[:16]}... but the run recorded {str(record.get('dataset_hash'))[:16]}..."
        )
    result = compute(
        recipe, train, valid, progress=not args.no_progress, n_jobs=args.n_jobs, ownership=ownership
    )
    recomputed = result.result_hash()
    same = recomputed == record["result_hash"]
    print(f"recorded result hash   {record['result_hash']}")
    print(f"recomputed result hash {recomputed}")
    if same:
        print(f"reproduced: run {args.index} ({record['method']}) matches bit for bit")
        return 0
    note = " (its stopping rule depends on wall time)" if depends_on_time(recipe) else ""
    print(f"NOT reproduced: run {args.index} differs{note}")
    return 1
