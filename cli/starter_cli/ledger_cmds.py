"""``starter-cli ledger ...``: create, append to, read, prove and verify the ledger.

For: the command-line surface over ``starter_ledger``. Each command resolves its configuration,
calls the library, and prints human text or ``--json``. Errors propagate to the one boundary in
``app.main``. Not for: ledger rules (all in ``starter_ledger``).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from starter_cli._common import (
    ACTOR_OPTION,
    JSON_OPTION,
    KEY_OPTION,
    LEDGER_OPTION,
    default_key_url,
    max_payload_bytes,
    notify_replicas,
    print_json,
    progress_bar,
    read_text_file,
    resolve_actor,
    safe,
    write_atomically,
)

if TYPE_CHECKING:
    from starter_ledger.keys import Signer
    from starter_ledger.ledger import Ledger

app = typer.Typer(
    help="Create, append to, read, prove and verify the signed ledger.", no_args_is_help=True
)
proof_app = typer.Typer(help="Print RFC 9162 Merkle proofs from the ledger.", no_args_is_help=True)
signer_app = typer.Typer(
    help="List, add and revoke authorised ledger signers.", no_args_is_help=True
)
app.add_typer(proof_app, name="proof")
app.add_typer(signer_app, name="signer")


def _open(url: str, *, max_payload: int | None = None) -> Ledger:
    from starter_ledger.ledger import Ledger

    return notify_replicas(Ledger.open(url, max_payload_bytes=max_payload_bytes(max_payload)))


def _signer(key: str | None, ledger_url: str) -> Signer:
    from starter_ledger.keystore import open_keystore

    return open_keystore(key or default_key_url(ledger_url)).load()


def _sqlite_path(url: str) -> Path | None:
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///") :].split("?", 1)[0])
    return None


def _sqlite_files(db: Path) -> list[Path]:
    return [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]


@contextlib.contextmanager
def _removed_on_error(paths: list[Path]) -> Iterator[None]:
    """Remove files this command created if it then fails: a refused command leaves nothing."""
    try:
        yield
    except BaseException:
        for path in paths:
            path.unlink(missing_ok=True)
        raise


def _b64(data: bytes) -> str:
    from starter_ledger.encoding import b64_encode

    return b64_encode(data)


@app.command()
def init(
    origin: str = typer.Option(
        ...,
        "--origin",
        help="The ledger's origin, e.g. example.com/ledger "
        "(no spaces or '+'; it names the ledger in every checkpoint).",
    ),
    ledger: str = LEDGER_OPTION,
    key: str | None = KEY_OPTION,
    actor: str | None = ACTOR_OPTION,
    description: str = typer.Option("", "--description", help="Free text stored in genesis."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Create a ledger: a genesis entry naming ORIGIN and its first signer.

    Without --key, a new Ed25519 key is created in keys/signer.pem beside the ledger (PKCS#8,
    mode 0600); an existing key file there is reused.
    """
    import re

    from starter_contracts import ORIGIN_PATTERN
    from starter_ledger.errors import (
        InputRejectedError,
        LedgerExistsError,
        LedgerUnavailableError,
    )
    from starter_ledger.keystore import FileKeyStore, open_keystore
    from starter_ledger.ledger import Ledger

    if not re.fullmatch(ORIGIN_PATTERN, origin):
        raise InputRejectedError(
            f"origin {origin!r} is not allowed",
            hint="use 1-255 printable ASCII characters without spaces or '+', "
            "e.g. example.com/ledger",
        )
    who = resolve_actor(actor)  # validated before anything is created
    db = _sqlite_path(ledger)
    if db is None or db.exists():
        try:
            existing = Ledger.open(ledger)  # refuses a file that is not a ledger
        except LedgerUnavailableError:
            if db is not None:
                raise
        else:  # a server ledger that does not exist yet is created below
            with existing:
                if existing.size():
                    raise LedgerExistsError(
                        f"ledger {ledger} already has {existing.size()} entries",
                        hint="use it as it is, or choose another --ledger",
                    )
    created_files = [] if db is None or db.exists() else _sqlite_files(db)
    store = open_keystore(key or default_key_url(ledger))
    created = not store.exists()
    signer = store.create() if created else store.load()
    if created and isinstance(store, FileKeyStore):
        created_files.append(store.path)
    with _removed_on_error(created_files), Ledger.open(ledger, create=True) as led:
        result = led.init(origin, signer, who, description=description)
    import hashlib

    genesis = hashlib.sha256(result.entries[0]).hexdigest()
    if json_out:
        print_json(
            {
                "origin": origin,
                "ledger": ledger,
                "key": store.url,
                "key_created": created,
                "kid": signer.kid,
                "genesis_sha256": genesis,
                "size": result.size,
                "checkpoint": result.checkpoint,
            }
        )
        return
    typer.echo(f"created ledger {ledger} (origin {origin})")
    typer.echo(f"signer key {signer.kid} {'created' if created else 'reused'} at {store.url}")
    typer.echo(f"genesis sha256 {genesis}  (pin it: ledger verify --genesis {genesis})")


@app.command()
def append(
    type_: str = typer.Option(..., "--type", "-t", help="Event type, e.g. note.recorded."),
    payload: str = typer.Option(
        ..., "--payload", "-p", help="JSON object payload: a file path, or - for stdin."
    ),
    schema_version: int | None = typer.Option(
        None, "--schema-version", min=1, help="Payload schema version (default: newest)."
    ),
    ledger: str = LEDGER_OPTION,
    key: str | None = KEY_OPTION,
    actor: str | None = ACTOR_OPTION,
    max_payload: int | None = typer.Option(
        None,
        "--max-payload-bytes",
        min=1,
        help="Payload size limit (default 1 MiB, env STARTER_MAX_PAYLOAD_BYTES).",
    ),
    json_out: bool = JSON_OPTION,
) -> None:
    """Append one signed event; retries automatically if another process appends meanwhile."""
    from starter_ledger.errors import InputRejectedError
    from starter_ledger.ledger import parse_payload_json

    limit = max_payload_bytes(max_payload)
    if payload == "-":
        data = sys.stdin.buffer.read(limit + 1)
    else:
        try:
            with open(payload, "rb") as f:
                data = f.read(limit + 1)
        except OSError as e:
            raise InputRejectedError(
                f"cannot read payload file {payload}: {e.strerror}",
                hint="pass a readable JSON file, or - for stdin",
            ) from None
    body = parse_payload_json(data, limit)
    with _open(ledger, max_payload=limit) as led:
        signer = _signer(key, ledger)
        result = led.append(
            type_, body, signer, resolve_actor(actor), schema_version=schema_version
        )
    if json_out:
        print_json(
            {
                "seq": result.first_seq,
                "size": result.size,
                "root_hash": _b64(result.root),
                "checkpoint": result.checkpoint,
            }
        )
        return
    typer.echo(f"appended {type_} as entry {result.first_seq}; ledger size {result.size}")


def _entry_json(seq: int, raw: bytes) -> dict[str, Any]:
    from starter_ledger.entry import decode_entry
    from starter_ledger.merkle import leaf_hash

    entry = decode_entry(raw)
    return {
        "seq": seq,
        "kid": entry.kid,
        "leaf_hash": _b64(leaf_hash(raw)),
        "envelope": entry.envelope.model_dump(mode="json"),
        "entry": raw.decode("ascii"),
    }


@app.command()
def show(
    start: int = typer.Option(0, "--from", min=0, help="First entry to show."),
    end: int | None = typer.Option(None, "--to", min=0, help="Last entry to show (inclusive)."),
    ledger: str = LEDGER_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Show entries (decoded envelopes; --json adds the verbatim entry bytes)."""
    with _open(ledger) as led:
        stop = led.size() if end is None else min(end + 1, led.size())
        rows = led.store.iter_entries(start, stop)
        if json_out:
            print_json([_entry_json(seq, raw) for seq, raw in rows])
            return
        import json

        from starter_ledger.entry import decode_entry

        typer.echo(
            f"{'seq':>6}  {'occurred_at':<24}  {'type':<18}  {'actor':<16}  kid       payload"
        )
        for seq, raw in rows:
            e = decode_entry(raw)
            env = e.envelope
            text = json.dumps(env.payload, sort_keys=True, ensure_ascii=False)
            text = text if len(text) <= 60 else text[:59] + "…"
            typer.echo(
                f"{seq:>6}  {env.occurred_at:<24}  {env.type:<18}  {safe(env.actor)[:16]:<16}  "
                f"{e.kid[:8]}  {safe(text)}"
            )


@app.command()
def verify(
    ledger: str = LEDGER_OPTION,
    genesis: str | None = typer.Option(
        None, "--genesis", help="Pin: the SHA-256 (hex) of the genesis entry."
    ),
    checkpoint: Path | None = typer.Option(
        None,
        "--checkpoint",
        help="Pin: a checkpoint saved earlier; the ledger must extend it (consistency proof).",
    ),
    bundle: Path | None = typer.Option(
        None, "--bundle", help="Verify an export bundle offline (no database)."
    ),
    from_checkpoint: Path | None = typer.Option(
        None,
        "--from-checkpoint",
        help="Verify only what was appended since this trusted checkpoint.",
    ),
    jobs: int | None = typer.Option(
        None, "--jobs", min=1, help="Worker processes (default: all cores on large ledgers)."
    ),
    jwks: Path | None = typer.Option(
        None, "--jwks", help="Also check that this published JWKS file is the projection now."
    ),
    json_out: bool = JSON_OPTION,
) -> None:
    """Prove history was never rewritten: signatures, authorisation, tree, checkpoints, pins,
    key lifecycle and the JWKS projection.

    Exit code 0 when verified, 1 when any check fails (the first failure names the entry).
    """
    import re

    from starter_ledger.errors import InputRejectedError
    from starter_ledger.verify import verify_bundle, verify_from_checkpoint, verify_store

    if genesis is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", genesis):
        raise InputRejectedError("--genesis must be 64 hex characters (a SHA-256)")
    if bundle is not None and from_checkpoint is not None:
        raise InputRejectedError("--bundle and --from-checkpoint cannot be combined")
    if checkpoint is not None and from_checkpoint is not None:
        raise InputRejectedError(
            "--checkpoint and --from-checkpoint cannot be combined",
            hint="--from-checkpoint already pins the ledger to that checkpoint",
        )
    pin = read_text_file(checkpoint, "checkpoint file") if checkpoint else None
    now = _rehearsal_now()
    with progress_bar("verifying", not json_out) as progress:
        if bundle is not None:
            from starter_ledger.bundle import BundleSource

            report = verify_bundle(
                BundleSource(bundle),
                genesis_sha256=genesis,
                checkpoint=pin,
                jobs=jobs,
                progress=progress,
                now=now,
            )
        else:
            with _open(ledger) as led:
                if from_checkpoint is not None:
                    trusted = read_text_file(from_checkpoint, "checkpoint file")
                    report = verify_from_checkpoint(
                        led.store,
                        trusted,
                        genesis_sha256=genesis,
                        jobs=jobs,
                        progress=progress,
                        now=now,
                    )
                else:
                    report = verify_store(
                        led.store,
                        genesis_sha256=genesis,
                        checkpoint=pin,
                        jobs=jobs,
                        progress=progress,
                        now=now,
                    )
    if jwks is not None and report.ok:
        _check_published_jwks(report, jwks)
    if json_out:
        print_json(report.to_dict())
    elif report.ok:
        what = (
            f"{report.entries_checked} new entries since size {report.verified_from}"
            if report.verified_from is not None
            else f"{report.entries_checked} entries"
        )
        typer.echo(
            f"verified {report.source}: {what}, {report.checkpoints_checked} "
            f"checkpoints; size {report.size}, root {report.root_hash}"
        )
    else:
        f = report.first_failure
        where = f"entry {f.seq}" if f and f.seq is not None else "ledger"
        check, message = (f.check, f.message) if f else ("unknown", "verification failed")
        typer.echo(f"FAILED {report.source}: {where}: {check}: {safe(message)}", err=True)
    raise typer.Exit(0 if report.ok else 1)


def _rehearsal_now() -> Any:
    """The fixed time in STARTER_NOW (the JWKS projection is taken then), else None (now)."""
    fixed = os.environ.get("STARTER_NOW")
    if not fixed:
        return None
    from starter_cli.keys_cmds import parse_time

    return parse_time(fixed, "STARTER_NOW")


def _check_published_jwks(report: Any, path: Path) -> None:
    """Fail the report when the JWKS file at ``path`` is not the projection just verified."""
    import hashlib

    from starter_ledger.errors import InputRejectedError
    from starter_ledger.verify import Failure

    try:
        digest = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as e:
        raise InputRejectedError(f"cannot read JWKS file {path}: {e.strerror}") from None
    expected = report.jwks_digest or "sha256:" + hashlib.sha256(b'{"keys":[]}').hexdigest()
    if digest != expected:
        report.ok = False
        report.first_failure = Failure(
            None,
            "jwks-file",
            f"{path} ({digest}) is not the JWKS the ledger implies now ({expected}): "
            "republish it with 'starter-cli keys publish'",
        )


@app.command("checkpoint")
def checkpoint_cmd(
    ledger: str = LEDGER_OPTION,
    out: Path | None = typer.Option(None, "--out", help="Also write it to FILE (atomically)."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Print the latest signed checkpoint (C2SP tlog-checkpoint as a signed note)."""
    from starter_ledger.note import parse_checkpoint, parse_note

    with _open(ledger) as led:
        note = led.latest_checkpoint()
    if out is not None:
        write_atomically(out, note.encode())
    if json_out:
        cp = parse_checkpoint(parse_note(note).text)
        print_json({"origin": cp.origin, "size": cp.size, "root_hash": cp.root_hash, "note": note})
        return
    sys.stdout.write(note)


@proof_app.command("inclusion")
def proof_inclusion(
    index: int = typer.Option(..., "--index", min=0, help="Entry (leaf) index."),
    size: int | None = typer.Option(None, "--size", min=1, help="Tree size (default: current)."),
    ledger: str = LEDGER_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Print the RFC 9162 inclusion proof of entry INDEX in the tree of SIZE entries."""
    from starter_ledger.errors import InputRejectedError
    from starter_ledger.merkle import verify_inclusion

    with _open(ledger) as led:
        n = led.size() if size is None else size
        if index >= n:
            raise InputRejectedError(f"--index {index} is not below the tree size {n}")
        proof = led.inclusion_proof(index, size)
        root = led.root(n)
        leaf = led.leaf_hash(index)
    verify_inclusion(leaf, index, n, proof, root)
    doc = {
        "leaf_index": index,
        "tree_size": n,
        "leaf_hash": _b64(leaf),
        "root_hash": _b64(root),
        "proof": [_b64(h) for h in proof],
    }
    _print_proof(doc, json_out)


@proof_app.command("consistency")
def proof_consistency(
    old: int = typer.Option(..., "--old", min=1, help="Size of the older tree."),
    new: int | None = typer.Option(
        None, "--new", min=1, help="Size of the newer tree (default: current)."
    ),
    ledger: str = LEDGER_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Print the RFC 9162 consistency proof between tree sizes OLD and NEW."""
    from starter_ledger.errors import InputRejectedError
    from starter_ledger.merkle import verify_consistency

    with _open(ledger) as led:
        n = led.size() if new is None else new
        if old > n:
            raise InputRejectedError(f"--old {old} is larger than the newer size {n}")
        proof = led.consistency_proof(old, n)
        root1, root2 = led.root(old), led.root(n)
    verify_consistency(old, n, proof, root1, root2)
    doc = {
        "size1": old,
        "size2": n,
        "root1": _b64(root1),
        "root2": _b64(root2),
        "proof": [_b64(h) for h in proof],
    }
    _print_proof(doc, json_out)


def _print_proof(doc: dict[str, Any], json_out: bool) -> None:
    if json_out:
        print_json(doc)
        return
    for k, v in doc.items():
        if k != "proof":
            typer.echo(f"{k}: {v}")
    typer.echo("proof:")
    for h in doc["proof"]:
        typer.echo(f"  {h}")


@app.command()
def export(
    out: Path = typer.Option(..., "--out", help="Bundle file to write (JSON Lines)."),
    ledger: str = LEDGER_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Export every entry and checkpoint to one file that 'verify --bundle' checks offline."""
    from starter_ledger.bundle import export_bundle

    with _open(ledger) as led:
        origin = led.origin()
        with progress_bar("exporting", not json_out) as progress:
            n = export_bundle(led.store, out, origin=origin, progress=progress)
    if json_out:
        print_json({"out": str(out), "entries": n, "origin": origin})
        return
    typer.echo(f"exported {n} entries to {out}")


@signer_app.command("list")
def signer_list(ledger: str = LEDGER_OPTION, json_out: bool = JSON_OPTION) -> None:
    """List the signers authorised now."""
    with _open(ledger) as led:
        signers = led.signer_set()
    kids = sorted(signers.authorised)
    if json_out:
        print_json({"origin": signers.origin, "size": signers.size, "signers": kids})
        return
    for kid in kids:
        typer.echo(kid)


@signer_app.command("add")
def signer_add(
    new_key: str = typer.Option(
        ...,
        "--new-key",
        help="Key store URL of the new signer (file://PATH); created if it does not exist.",
    ),
    note: str = typer.Option("", "--note", help="Why this signer is added."),
    ledger: str = LEDGER_OPTION,
    key: str | None = KEY_OPTION,
    actor: str | None = ACTOR_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Authorise a new signer (signer.added, with its proof of possession)."""
    from starter_ledger.errors import NotAuthorisedError
    from starter_ledger.keystore import FileKeyStore, open_keystore
    from starter_ledger.trust import make_proof_of_possession

    who = resolve_actor(actor)
    with _open(ledger) as led:
        signer = _signer(key, ledger)
        if signer.kid not in led.signer_set().authorised:
            raise NotAuthorisedError(
                f"key {signer.kid} is not an authorised signer of {ledger}",
                hint="sign with an authorised signer's key (see 'starter-cli ledger signer list')",
            )
        store = open_keystore(new_key)
        created = not store.exists()
        new = store.create() if created else store.load()
        undo = [store.path] if created and isinstance(store, FileKeyStore) else []
        with _removed_on_error(undo):
            payload = {
                "jwk": new.public_jwk,
                "note": note,
                "proof_of_possession": make_proof_of_possession(led.origin(), new),
            }
            result = led.append("signer.added", payload, signer, who)
    if json_out:
        print_json(
            {"seq": result.first_seq, "kid": new.kid, "key": store.url, "key_created": created}
        )
        return
    typer.echo(f"authorised signer {new.kid} in entry {result.first_seq}")


@signer_app.command("revoke")
def signer_revoke(
    kid: str = typer.Argument(..., help="The signer's kid (RFC 7638 thumbprint)."),
    reason: str = typer.Option(..., "--reason", help="Why it is revoked."),
    ledger: str = LEDGER_OPTION,
    key: str | None = KEY_OPTION,
    actor: str | None = ACTOR_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Revoke an authorised signer (signer.revoked); the last one cannot be revoked."""
    with _open(ledger) as led:
        result = led.append(
            "signer.revoked",
            {"kid": kid, "reason": reason},
            _signer(key, ledger),
            resolve_actor(actor),
        )
    if json_out:
        print_json({"seq": result.first_seq, "kid": kid})
        return
    typer.echo(f"revoked signer {kid} in entry {result.first_seq}")
