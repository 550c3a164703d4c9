"""Verification, part 1: the per-entry checks that run in worker processes.

For: ``check_chunk``, which decodes entries, validates their payloads and checks their Ed25519
signatures with the keys it is given, and ``_checked``, which sends chunks of entries to a process
pool (or checks them in this process) and yields the results in order. Only what the in-order
replay needs travels back. Not for: anything that depends on earlier entries (the tree, the trust
rules, checkpoints, pins: ``_verify_replay``), nor the public API (``starter_ledger.verify``).
"""

from __future__ import annotations

import hashlib
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from itertools import islice
from typing import Any

from starter_events import KEY_EVENT_TYPES, EventError, validate_payload
from starter_ledger.entry import decode_entry
from starter_ledger.errors import FormatError, LedgerError
from starter_ledger.keys import Verifier, public_key_bytes, thumbprint
from starter_ledger.trust import SIGNER_EVENT_TYPES

#: Release events whose order the replay checks: versions and tags only go up, and a tag names
#: only artifacts published before it for its version.
RELEASE_RULE_TYPES = frozenset({"version.bumped", "artifact.published", "release.tagged"})

#: Entries per unit of work sent to a worker process.
CHUNK = 2048


_verifiers: dict[bytes, Verifier] = {}


def _verifier(public_key: bytes) -> Verifier:
    v = _verifiers.get(public_key)
    if v is None:
        if len(_verifiers) > 4096:
            _verifiers.clear()
        v = _verifiers[public_key] = Verifier(public_key)
    return v


# One checked entry: (row seq, leaf hash, info or None, (check, message) or None).
_Checked = tuple[int, bytes, tuple[Any, ...] | None, tuple[str, str] | None]


def check_chunk(rows: list[tuple[int, bytes]], keys: dict[str, bytes]) -> list[_Checked]:
    """Decode, validate and signature-check entries; keys maps kid -> public key."""
    sha256 = hashlib.sha256
    out: list[_Checked] = []
    local = dict(keys)
    for seq, raw in rows:
        lh = sha256(b"\x00" + raw).digest()
        try:
            entry = decode_entry(raw)
            env = entry.envelope
            validate_payload(env.type, env.schema_version, env.payload)
        except FormatError as e:
            out.append((seq, lh, None, ("entry-format", e.message)))
            continue
        except EventError as e:
            out.append((seq, lh, None, ("payload", e.message)))
            continue
        except (ValueError, TypeError, RecursionError) as e:  # hostile bytes must not crash
            out.append((seq, lh, None, ("entry-format", f"entry cannot be decoded: {e!s:.120}")))
            continue
        kid = entry.kid
        payload = env.payload
        if env.type == "ledger.genesis":
            local.setdefault(thumbprint(payload["signer"]), public_key_bytes(payload["signer"]))
        public_key = local.get(kid)
        sig: bool | None = None
        if public_key is not None:
            sig = _verifier(public_key).verify(entry.jws.signing_input, entry.jws.signature)
        if env.type == "signer.added":
            local.setdefault(thumbprint(payload["jwk"]), public_key_bytes(payload["jwk"]))
        deferred = (entry.jws.signing_input, entry.jws.signature) if sig is None else None
        genesis = sha256(raw).hexdigest() if env.seq == 0 else None
        # Only the payloads the in-order replay needs travel back from the workers.
        rule_payload = (
            payload
            if env.type in SIGNER_EVENT_TYPES
            or env.type in KEY_EVENT_TYPES
            or env.type in RELEASE_RULE_TYPES
            else None
        )
        info = (
            env.seq,
            env.origin,
            env.type,
            env.prev_root,
            kid,
            rule_payload,
            sig,
            deferred,
            genesis,
        )
        out.append((seq, lh, info, None))
    return out


def _check_chunk_job(args: tuple[list[tuple[int, bytes]], dict[str, bytes]]) -> list[_Checked]:
    return check_chunk(*args)


def _chunks(it: Iterator[tuple[int, bytes]], n: int) -> Iterator[list[tuple[int, bytes]]]:
    """Chunks of ``n`` entries; on a read error, the entries read so far come first."""
    while True:
        chunk: list[tuple[int, bytes]] = []
        try:
            chunk.extend(islice(it, n))
        except LedgerError:
            if chunk:
                yield chunk
            raise
        if not chunk:
            return
        yield chunk


def _checked(
    entries: Iterator[tuple[int, bytes]], keys: Callable[[], dict[str, bytes]], jobs: int
) -> Iterator[_Checked]:
    chunks = _chunks(entries, CHUNK)
    if jobs <= 1:
        for chunk in chunks:
            yield from check_chunk(chunk, keys())
        return
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context(method))
    pending: deque[Future[list[_Checked]]] = deque()
    try:
        try:
            for chunk in chunks:
                pending.append(pool.submit(_check_chunk_job, (chunk, keys())))
                if len(pending) >= 2 * jobs:
                    yield from pending.popleft().result()
        except LedgerError:
            while pending:  # entries read before the error are checked (and may fail) first
                yield from pending.popleft().result()
            raise
        while pending:
            yield from pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
