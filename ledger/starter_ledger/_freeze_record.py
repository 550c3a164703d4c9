"""The freeze record, ``FROZEN.json``: the signed ``schema.frozen`` entry behind the snapshots.

For: building the record (``record_document``, or ``record_from_ledger`` for a freeze already
stored), reading it (``read_record``) and verifying it offline (``verify_record``, giving a
``RecordCheck``); and the ledger's ``schema.frozen`` entries (``frozen_entries``,
``last_freeze``, ``ledger_problems``). Re-exported by ``starter_ledger.freeze``, the public entry.
Not for: the snapshot files themselves (``_snapshots``), writing the folder (``_freeze_folder``)
or the ``schema.frozen`` payload model (``starter_events.schemas``).

Beside the snapshots, ``FROZEN.json`` holds the ``schema.frozen`` entry verbatim (compact JWS),
its seq and RFC 9162 leaf hash, its inclusion proof against the signed checkpoint written with
it, the ledger's origin and the signer's public JWK. From it ``verify_record`` proves offline (a
CI clone has no ledger) that the snapshot files are exactly those whose digests a ledger signer
froze. Which signer to trust is the caller's to pin (``trusted_kids``). A record that does not
verify is a ``RecordCheck`` with its problems, not an exception.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starter_contracts import StarterError
from starter_events import SchemaFrozenPayload, validate_payload
from starter_ledger._snapshots import FROZEN_FILE, REGENERATE, digest, read_json
from starter_ledger.encoding import b64_decode, b64_encode
from starter_ledger.entry import decode_entry
from starter_ledger.errors import InputRejectedError, LedgerUnavailableError, ProofError
from starter_ledger.keys import Verifier, public_jwk, public_key_bytes, thumbprint
from starter_ledger.ledger import Ledger
from starter_ledger.merkle import leaf_hash, verify_inclusion
from starter_ledger.note import parse_checkpoint, parse_note

__all__ = [
    "FROZEN_TYPE",
    "Frozen",
    "RecordCheck",
    "frozen_entries",
    "last_freeze",
    "ledger_problems",
    "read_record",
    "record_document",
    "record_from_ledger",
    "verify_record",
]

FROZEN_TYPE = "schema.frozen"

#: The newest stored freeze: seq, entry bytes, payload.
Frozen = tuple[int, bytes, SchemaFrozenPayload]


@dataclass
class RecordCheck:
    """The outcome of verifying ``FROZEN.json`` against the snapshot files: ``ok`` or the
    problems, and what the record says."""

    ok: bool = False
    problems: list[str] = field(default_factory=list)
    seq: int | None = None
    origin: str | None = None
    signer_kid: str | None = None
    #: True/False when trusted kids were given, None when the signer is not pinned.
    trusted: bool | None = None
    payload: SchemaFrozenPayload | None = None
    occurred_at: str | None = None
    actor: str | None = None
    entry: bytes | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "seq": self.seq,
            "origin": self.origin,
            "signer_kid": self.signer_kid,
            "trusted": self.trusted,
            "contracts_version": self.payload.contracts_version if self.payload else None,
            "frozen_at": self.occurred_at,
            "actor": self.actor,
        }


class _Bad(Exception):
    """A problem with the record, its message ready for ``RecordCheck.problems``."""


def record_document(
    *, origin: str, seq: int, raw: bytes, proof: list[bytes], checkpoint: str, jwk: dict[str, str]
) -> dict[str, Any]:
    """The ``FROZEN.json`` document of entry ``raw`` (``seq`` of ``origin``), signed by ``jwk``,
    with its inclusion ``proof`` against the signed ``checkpoint``."""
    return {
        "about": "The schema.frozen ledger entry of these snapshots, with its inclusion proof "
        f"and signed checkpoint. Written by '{REGENERATE}'; checked by 'starter-cli contracts "
        "check'. Do not edit.",
        "record_version": 1,
        "origin": origin,
        "seq": seq,
        "entry": raw.decode("ascii"),
        "leaf_hash": b64_encode(leaf_hash(raw)),
        "inclusion_proof": [b64_encode(h) for h in proof],
        "checkpoint": checkpoint,
        "signer": jwk,
    }


def read_record(folder: Path) -> dict[str, Any]:
    """``FROZEN.json`` of ``folder``, parsed; missing or not JSON is an error naming the fix."""
    path = folder / FROZEN_FILE
    if not path.is_file():
        raise InputRejectedError(
            f"no freeze record {path}",
            hint=f"run '{REGENERATE}' and commit {FROZEN_FILE} with the snapshots",
        )
    _, document = read_json(path, "freeze record")
    if not isinstance(document, dict):
        raise InputRejectedError(
            f"freeze record {path} is not a JSON object", hint=f"regenerate it with '{REGENERATE}'"
        )
    return document


def verify_record(
    document: Mapping[str, Any],
    snapshots: Mapping[str, bytes],
    trusted_kids: Collection[str] | None = None,
) -> RecordCheck:
    """Verify a parsed ``FROZEN.json`` offline: the entry's signature by the JWK it names (and
    that the kid is trusted, when ``trusted_kids`` is given), that it is a valid
    ``schema.frozen``, its inclusion in the checkpoint signed by the same key, and that the
    frozen digests are exactly those of ``snapshots``."""
    check = RecordCheck()
    try:
        _verify_record(document, trusted_kids, check)
    except _Bad as e:
        check.problems.append(str(e))
    except StarterError as e:  # FormatError, ProofError, EventError: malformed parts
        check.problems.append(f"{FROZEN_FILE}: {e.message}")
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        check.problems.append(f"{FROZEN_FILE} is malformed: {type(e).__name__}: {e!s:.120}")
    else:
        check.problems.extend(_digest_problems(check, snapshots))
    check.ok = not check.problems
    return check


def _verify_record(
    doc: Mapping[str, Any], trusted: Collection[str] | None, check: RecordCheck
) -> None:
    if doc.get("record_version") != 1:
        raise _Bad(f"{FROZEN_FILE} is not a version 1 freeze record")
    jwk = doc["signer"]
    kid = check.signer_kid = thumbprint(jwk)
    public_key = public_key_bytes(jwk)
    verifier = Verifier(public_key)
    seq, origin, raw = doc["seq"], str(doc["origin"]), str(doc["entry"]).encode("ascii")
    if type(seq) is not int:
        raise _Bad(f"{FROZEN_FILE}: seq is not a whole number")
    check.seq, check.origin = seq, origin
    entry = decode_entry(raw)
    if entry.kid != kid:
        raise _Bad(
            f"the frozen entry is signed by {entry.kid}, not by the signer {FROZEN_FILE} names"
        )
    if not verifier.verify(entry.jws.signing_input, entry.jws.signature):
        raise _Bad(f"the frozen entry's signature does not verify: {FROZEN_FILE} was altered")
    if trusted is not None:
        check.trusted = kid in trusted
        if not check.trusted:
            raise _Bad(f"the freeze is signed by {kid}, which is not a trusted signer")
    env = entry.envelope
    if env.type != FROZEN_TYPE:
        raise _Bad(f"the entry in {FROZEN_FILE} is a {env.type} event, not {FROZEN_TYPE}")
    if env.seq != seq or env.origin != origin:
        raise _Bad(f"the frozen entry is entry {env.seq} of {env.origin}, not {seq} of {origin}")
    payload = validate_payload(env.type, env.schema_version, env.payload)
    if not isinstance(payload, SchemaFrozenPayload):
        raise _Bad(f"{FROZEN_TYPE} v{env.schema_version} is not understood by this version")
    check.payload, check.occurred_at, check.actor, check.entry = (
        payload,
        env.occurred_at,
        env.actor,
        raw,
    )
    leaf = leaf_hash(raw)
    if doc.get("leaf_hash") != b64_encode(leaf):
        raise _Bad(f"the leaf hash in {FROZEN_FILE} is not that of its entry")
    note = parse_note(str(doc["checkpoint"]))
    if not note.verify(origin, public_key):
        raise _Bad(f"the checkpoint in {FROZEN_FILE} is not signed by the freeze's signer")
    body = parse_checkpoint(note.text)
    if body.origin != origin:
        raise _Bad(f"the checkpoint in {FROZEN_FILE} is for {body.origin}, not {origin}")
    proof = [b64_decode(h) for h in doc["inclusion_proof"]]
    try:
        verify_inclusion(leaf, seq, body.size, proof, b64_decode(body.root_hash))
    except ProofError as e:
        raise _Bad(
            f"the frozen entry {seq} is not in the checkpoint's tree of size {body.size}: "
            f"{e.message}"
        ) from None


def _digest_problems(check: RecordCheck, snapshots: Mapping[str, bytes]) -> list[str]:
    if check.payload is None:
        return []
    recorded = check.payload.snapshots
    actual = {name: digest(data) for name, data in snapshots.items()}
    where = f"the freeze of entry {check.seq}"
    problems = [
        f"snapshot {name} is part of {where} but missing from the folder"
        for name in sorted(recorded.keys() - actual.keys())
    ]
    problems += [
        f"snapshot {name} is not part of {where}"
        for name in sorted(actual.keys() - recorded.keys())
    ]
    problems += [
        f"snapshot {name} does not match its digest in {where}: edited by hand or changed "
        "without freezing"
        for name in sorted(recorded.keys() & actual.keys())
        if recorded[name] != actual[name]
    ]
    return problems


# -- the ledger's freezes --------------------------------------------------------------------


def frozen_entries(ledger: Ledger) -> list[tuple[int, bytes]]:
    """Every stored ``schema.frozen`` entry of ``ledger``: ``(seq, entry bytes)``, oldest first."""
    return ledger.store.entries_of_types([FROZEN_TYPE])


def last_freeze(ledger: Ledger) -> Frozen | None:
    """The ledger's newest freeze, or None when it has none (or one this version cannot read)."""
    frozen = frozen_entries(ledger)
    if not frozen:
        return None
    seq, raw = frozen[-1]
    env = decode_entry(raw).envelope
    payload = validate_payload(env.type, env.schema_version, env.payload)
    return (seq, raw, payload) if isinstance(payload, SchemaFrozenPayload) else None


def ledger_problems(ledger: Ledger, check: RecordCheck) -> list[str]:
    """A record that verifies must also be the ledger's newest freeze, byte for byte."""
    if check.entry is None or check.seq is None:
        return []
    frozen = frozen_entries(ledger)
    url = ledger.store.url
    if dict(frozen).get(check.seq) != check.entry:
        return [
            f"the freeze in {FROZEN_FILE} (entry {check.seq}) is not in ledger {url}: the record "
            "comes from another ledger"
        ]
    if frozen[-1][0] > check.seq:
        return [
            f"the snapshots are older than the last freeze in the ledger: {url} froze again at "
            f"entry {frozen[-1][0]}, {FROZEN_FILE} holds entry {check.seq}"
        ]
    return []


def record_from_ledger(ledger: Ledger, seq: int, raw: bytes) -> dict[str, Any]:
    """The record of the stored freeze at ``seq``: proven against the first checkpoint after
    it, which the same signer signed (one append, one signer, one checkpoint at its end)."""
    entry = decode_entry(raw)
    found = next(iter(ledger.store.iter_checkpoints(seq + 1)), None)
    if found is None:
        raise LedgerUnavailableError(
            f"ledger {ledger.store.url} has no checkpoint after entry {seq}",
            hint="run 'starter-cli ledger verify'",
        )
    size, note = found
    public_key = ledger.signer_set(size).known[entry.kid]
    proof = ledger.inclusion_proof(seq, size)
    return record_document(
        origin=entry.envelope.origin,
        seq=seq,
        raw=raw,
        proof=proof,
        checkpoint=note,
        jwk=public_jwk(public_key),
    )
