"""Audit receipts: one signed, self-contained proof of each key change, verifiable offline.

For: ``make_receipt`` and ``verify_receipt``. A receipt is a compact JWS (``typ``
``starter-ledger-receipt+jws``, EdDSA, signed by the ledger signer that appended the change) over
the RFC 8785 form of a JSON document holding: the action, the key set and kids it changed, the
JWKS digests before and after, the actor and time, and the ledger evidence: origin, every entry
of the change verbatim with its RFC 9162 leaf hash and inclusion proof, the signed checkpoint the
proofs are against, and the signer's public JWK. ``verify_receipt`` needs nothing else: no
database, no network. Trust in the signer is the caller's to pin (``trusted_kids``). Not for:
deciding what changes keys (``keyops``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from starter_ledger.encoding import b64_decode, b64_encode
from starter_ledger.entry import decode_entry
from starter_ledger.errors import FormatError, ProofError
from starter_ledger.jcs import canonicalize, parse_canonical
from starter_ledger.jws import parse_compact, sign_compact
from starter_ledger.keys import Signer, Verifier, public_key_bytes, thumbprint
from starter_ledger.merkle import verify_inclusion
from starter_ledger.note import parse_checkpoint, parse_note

__all__ = ["RECEIPT_MEDIA_TYPE", "ReceiptCheck", "make_receipt", "summary", "verify_receipt"]

#: ``typ`` of a receipt JWS.
RECEIPT_MEDIA_TYPE = "starter-ledger-receipt+jws"


def make_receipt(
    *,
    action: str,
    key_set: str,
    kids: dict[str, list[str]],
    jwks_before: str,
    jwks_after: str,
    actor: str,
    time: str,
    origin: str,
    checkpoint: str,
    entries: list[tuple[int, bytes, list[bytes]]],
    signer: Signer,
) -> str:
    """The receipt of one change: ``entries`` are (seq, entry bytes, inclusion proof against
    ``checkpoint``)."""
    document = {
        "receipt_version": 1,
        "action": action,
        "key_set": key_set,
        "kids": kids,
        "jwks_before": jwks_before,
        "jwks_after": jwks_after,
        "actor": actor,
        "time": time,
        "ledger": {
            "origin": origin,
            "signer": signer.public_jwk,
            "checkpoint": checkpoint,
            "entries": [
                {
                    "seq": seq,
                    "entry": raw.decode("ascii"),
                    "leaf_hash": b64_encode(hashlib.sha256(b"\x00" + raw).digest()),
                    "inclusion_proof": [b64_encode(h) for h in proof],
                }
                for seq, raw, proof in entries
            ],
        },
    }
    return sign_compact(canonicalize(document), signer, RECEIPT_MEDIA_TYPE)


@dataclass
class ReceiptCheck:
    """The outcome of verifying a receipt: ``ok``, what it says, and the first failure."""

    ok: bool
    signer_kid: str | None = None
    document: dict[str, Any] = field(default_factory=dict)
    failure: str | None = None


class _Bad(Exception):
    pass


def verify_receipt(token: str | bytes, trusted_kids: set[str] | None = None) -> ReceiptCheck:
    """Verify a receipt offline. ``trusted_kids`` pins the ledger signers you trust; without it
    the receipt is checked for internal consistency and the signer's kid is reported."""
    check = ReceiptCheck(ok=False)
    try:
        _verify(token.strip() if isinstance(token, bytes | str) else token, trusted_kids, check)
    except _Bad as e:
        check.failure = str(e)
        return check
    except (FormatError, ProofError) as e:
        check.failure = e.message
        return check
    except (KeyError, TypeError, ValueError) as e:
        check.failure = f"receipt is malformed: {type(e).__name__}: {e!s:.120}"
        return check
    check.ok = True
    return check


def _verify(token: str | bytes, trusted: set[str] | None, check: ReceiptCheck) -> None:
    jws = parse_compact(token, RECEIPT_MEDIA_TYPE)
    doc = parse_canonical(jws.payload)
    if not isinstance(doc, dict) or doc.get("receipt_version") != 1:
        raise _Bad("not a version 1 receipt")
    check.document = doc
    led = doc["ledger"]
    jwk = led["signer"]
    kid = thumbprint(jwk)
    check.signer_kid = kid
    if jws.kid != kid:
        raise _Bad("the receipt is not signed by the ledger signer it names")
    verifier = Verifier(public_key_bytes(jwk))
    if not verifier.verify(jws.signing_input, jws.signature):
        raise _Bad("the receipt's signature does not verify")
    if trusted is not None and kid not in trusted:
        raise _Bad(f"the receipt is signed by {kid}, which is not a trusted signer")
    origin = led["origin"]
    note = parse_note(led["checkpoint"])
    if not note.verify(origin, verifier.public_key):
        raise _Bad("the checkpoint is not signed by the receipt's signer")
    body = parse_checkpoint(note.text)
    if body.origin != origin:
        raise _Bad(f"the checkpoint is for {body.origin!r}, not {origin!r}")
    root = b64_decode(body.root_hash)
    named = {k for kids in doc["kids"].values() for k in kids}
    if not led["entries"]:
        raise _Bad("the receipt holds no ledger entries")
    for item in led["entries"]:
        raw = str(item["entry"]).encode("ascii")
        seq = int(item["seq"])
        leaf = hashlib.sha256(b"\x00" + raw).digest()
        if b64_encode(leaf) != item["leaf_hash"]:
            raise _Bad(f"entry {seq}: leaf hash does not match the entry")
        proof = [b64_decode(h) for h in item["inclusion_proof"]]
        try:
            verify_inclusion(leaf, seq, body.size, proof, root)
        except ProofError as e:
            raise _Bad(f"entry {seq} is not in the checkpoint's tree: {e.message}") from None
        entry = decode_entry(raw)
        if entry.kid != kid or not verifier.verify(entry.jws.signing_input, entry.jws.signature):
            raise _Bad(f"entry {seq} is not signed by the receipt's signer")
        env = entry.envelope
        if env.seq != seq or env.origin != origin:
            raise _Bad(f"entry {seq} is not entry {seq} of {origin}")
        if not env.type.startswith("key.") or env.payload.get("kid") not in named:
            raise _Bad(f"entry {seq} ({env.type}) is not a change the receipt names")


def summary(document: dict[str, Any]) -> str:
    """One line saying what a verified receipt records."""
    kids = ", ".join(f"{k}: {' '.join(v)}" for k, v in sorted(document.get("kids", {}).items()))
    seqs = [e["seq"] for e in document.get("ledger", {}).get("entries", [])]
    return (
        f"{document.get('action')} of key set {document.get('key_set')!r} by "
        f"{document.get('actor')} at {document.get('time')} ({kids}); ledger entries "
        f"{json.dumps(seqs)}; JWKS {document.get('jwks_before')} -> {document.get('jwks_after')}"
    )
