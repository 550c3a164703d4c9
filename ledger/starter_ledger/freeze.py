"""The schema freeze: committed snapshots of the contracts' schemas, signed into the ledger.

For: ``freeze`` (``starter-cli contracts freeze``) and ``check`` (``starter-cli contracts check``,
run by CI), their results (``FreezeResult``, ``CheckReport``), and the public names of their
parts, re-exported from the private modules that implement them:

- ``starter_ledger._snapshots``: the sources (entry points of ``ENTRY_POINT_GROUP``, each giving
  ``{file name: JSON document}``: the contracts' JSON Schemas, the backend's OpenAPI document),
  the canonical snapshot form (``render``, ``digest``: sorted, indented JSON that diffs readably
  in review, not RFC 8785) and reading the committed folder strictly (``read_snapshots``);
- ``starter_ledger._freeze_record``: ``FROZEN.json``, the ``schema.frozen`` entry verbatim with
  its inclusion proof, signed checkpoint and signer JWK, from which ``verify_record`` proves
  offline (a CI clone has no ledger) that the snapshot files are exactly those a ledger signer
  froze. Which signer to trust is the caller's to pin (``trusted_kids``);
- ``starter_ledger._freeze_folder``: the folder as ``freeze`` finds and rewrites it.

Not for: classifying changes (``schemadiff``), the ``schema.frozen`` payload
(``starter_events.schemas``) or verifying a whole ledger (``verify``).

Crash safety. ``freeze`` first stages the changed snapshot files as hidden temporary files beside
them (a folder that cannot be written refuses before anything is appended), then appends the
event, then renames the files into place, removes stale snapshots, and writes ``FROZEN.json``
last. A crash in between leaves a folder whose files and record disagree with each other or
with the code, which ``check`` reports naming the files; the next ``freeze`` sees that the
ledger's newest ``schema.frozen`` already has the code's digests and rewrites the folder from
that entry without appending again.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starter_events import SchemaChange
from starter_ledger._freeze_folder import SnapshotFolder, discard, stage
from starter_ledger._freeze_folder import write_folder as _write_folder  # tests patch this seam
from starter_ledger._freeze_record import (
    FROZEN_TYPE,
    Frozen,
    RecordCheck,
    last_freeze,
    ledger_problems,
    read_record,
    record_document,
    record_from_ledger,
    verify_record,
)
from starter_ledger._snapshots import (
    ENTRY_POINT_GROUP,
    FROZEN_FILE,
    REGENERATE,
    Source,
    current_snapshots,
    digest,
    installed_contracts_version,
    read_snapshots,
    render,
    snapshot_sources,
    unified_diff,
)
from starter_ledger.entry import decode_entry
from starter_ledger.errors import InputRejectedError
from starter_ledger.keys import Signer
from starter_ledger.ledger import Ledger
from starter_ledger.schemadiff import diff_snapshots

__all__ = [
    "ENTRY_POINT_GROUP",
    "FROZEN_FILE",
    "FROZEN_TYPE",
    "REGENERATE",
    "CheckReport",
    "FreezeResult",
    "RecordCheck",
    "Source",
    "check",
    "current_snapshots",
    "digest",
    "freeze",
    "installed_contracts_version",
    "read_record",
    "read_snapshots",
    "render",
    "snapshot_sources",
    "unified_diff",
    "verify_record",
]

_MAX_CHANGES = 4096  # SchemaFrozenPayload.changes


def _current(sources: Sequence[Source] | None) -> dict[str, bytes]:
    """What the code produces now, from ``sources`` or else the installed ones, looked up here:
    ``snapshot_sources`` of this module is the one seam that replaces them for both commands."""
    return current_snapshots(snapshot_sources() if sources is None else sources)


def _documents(files: Mapping[str, bytes], names: Collection[str]) -> dict[str, Any]:
    return {name: json.loads(files[name]) for name in names if name in files}


# -- check -----------------------------------------------------------------------------------


@dataclass
class CheckReport:
    """``contracts check``: do the code, the snapshot files and the freeze record agree?"""

    ok: bool
    folder: Path
    #: Snapshot files whose bytes differ between the folder and the code (added/removed too).
    changed_files: list[str]
    #: Classified changes from the frozen snapshots to the code.
    changes: list[SchemaChange]
    unified_diff: str
    record: RecordCheck
    #: Everything wrong with the record (and against the ledger, when one was given).
    problems: list[str]
    ledger: str | None = None

    @property
    def breaking(self) -> bool:
        return any(c.breaking for c in self.changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "folder": str(self.folder),
            "changed_files": self.changed_files,
            "changes": [c.model_dump(mode="json") for c in self.changes],
            "breaking": self.breaking,
            "record": self.record.to_dict(),
            "problems": self.problems,
            "ledger": self.ledger,
            "diff": self.unified_diff,
        }


def check(
    folder: Path,
    *,
    ledger: Ledger | None = None,
    trusted_kids: Collection[str] | None = None,
    sources: Sequence[Source] | None = None,
) -> CheckReport:
    """Compare the code with the snapshots in ``folder`` and verify their freeze record (and,
    with ``ledger``, that the record is that ledger's newest freeze). Drift is a report with
    ``ok = False``; a missing folder or record, or a file that is not canonical JSON, is an
    ``InputRejectedError`` naming the file and the command that regenerates it."""
    files = read_snapshots(folder)
    document = read_record(folder)
    code = _current(sources)
    record = verify_record(document, files, trusted_kids)
    problems = list(record.problems)
    if ledger is not None:
        problems += ledger_problems(ledger, record)
    changed = sorted(n for n in files.keys() | code.keys() if files.get(n) != code.get(n))
    changes = diff_snapshots(_documents(files, changed), _documents(code, changed))
    return CheckReport(
        ok=not changed and not problems,
        folder=folder,
        changed_files=changed,
        changes=changes,
        unified_diff=unified_diff(folder, files, code),
        record=record,
        problems=problems,
        ledger=ledger.store.url if ledger is not None else None,
    )


# -- freeze ----------------------------------------------------------------------------------


@dataclass
class FreezeResult:
    """What ``freeze`` did: ``appended`` a new ``schema.frozen`` (entry ``seq``), or found the
    code frozen already; which files it wrote or removed."""

    appended: bool
    seq: int
    contracts_version: str
    snapshots: dict[str, str]
    changes: list[SchemaChange]
    folder: Path
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def breaking(self) -> bool:
        return any(c.breaking for c in self.changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "appended": self.appended,
            "seq": self.seq,
            "contracts_version": self.contracts_version,
            "snapshots": self.snapshots,
            "changes": [c.model_dump(mode="json") for c in self.changes],
            "breaking": self.breaking,
            "folder": str(self.folder),
            "written": self.written,
            "removed": self.removed,
            "warnings": self.warnings,
        }


def _baseline(
    folder: Path, state: SnapshotFolder, last: Frozen | None
) -> tuple[dict[str, bytes] | None, list[str]]:
    """The snapshots frozen last, to classify changes against, and warnings about them."""
    if state.record is not None and verify_record(state.record, state.files).ok:
        return state.files, []
    if last is not None and last[2].snapshots == state.digests():
        return state.files, []
    if state.files:
        return state.files, [
            f"the snapshots in {folder} are not those of a verified freeze: the changes are "
            "classified against the files as they are"
        ]
    if last is not None or state.record is not None:
        return None, ["the previous freeze's snapshots are missing: changes are not classified"]
    return None, []


def _cap(changes: list[SchemaChange]) -> tuple[list[SchemaChange], list[str]]:
    if len(changes) <= _MAX_CHANGES:
        return changes, []
    kept = {id(c) for c in sorted(changes, key=lambda c: not c.breaking)[:_MAX_CHANGES]}
    note = f"{len(changes) - _MAX_CHANGES} of {len(changes)} changes are left out of the event"
    return [c for c in changes if id(c) in kept], [note]


def freeze(
    ledger: Ledger,
    signer: Signer,
    actor: str,
    folder: Path,
    *,
    contracts_version: str | None = None,
    sources: Sequence[Source] | None = None,
) -> FreezeResult:
    """Freeze the code's snapshots into ``folder`` and the ledger (see the module docstring).

    Idempotent: when the folder already holds the code's snapshots and a record that verifies,
    nothing happens; when the ledger's newest freeze is of the code's snapshots (an interrupted
    freeze, a fresh checkout), the folder is rewritten from it and nothing is appended.
    """
    current = _current(sources)
    digests = {name: digest(data) for name, data in current.items()}
    state = SnapshotFolder.read(folder)
    if state.record is not None and state.files == current:
        done = verify_record(state.record, state.files)
        if done.ok and done.payload is not None and done.seq is not None:
            return FreezeResult(
                False, done.seq, done.payload.contracts_version, digests, [], folder
            )
    last = last_freeze(ledger)
    if last is not None and last[2].snapshots == digests:
        seq, raw, payload = last
        staged = stage(folder, state.changed(current))
        record = record_from_ledger(ledger, seq, raw)
        written, removed = _write_folder(folder, staged, state.stale(current, last), record)
        return FreezeResult(
            False, seq, payload.contracts_version, digests, [], folder, written, removed
        )
    baseline, warnings = _baseline(folder, state, last)
    changes: list[SchemaChange] = []
    if baseline is not None:
        changes = diff_snapshots(
            _documents(baseline, baseline.keys()), _documents(current, current.keys())
        )
    changes, capped = _cap(changes)
    version = contracts_version or installed_contracts_version()
    payload_doc = {
        "contracts_version": version,
        "snapshots": digests,
        "changes": [c.model_dump(mode="json") for c in changes],
        "breaking": any(c.breaking for c in changes),
    }
    staged = stage(folder, state.changed(current))
    try:
        result = ledger.append(FROZEN_TYPE, payload_doc, signer, actor)
    except BaseException:
        discard(staged)
        raise
    seq, raw = result.first_seq, result.entries[0]
    record = record_document(
        origin=decode_entry(raw).envelope.origin,
        seq=seq,
        raw=raw,
        proof=ledger.inclusion_proof(seq, result.size),
        checkpoint=result.checkpoint,
        jwk=signer.public_jwk,
    )
    try:
        stale = state.stale(current, last)
        written, removed = _write_folder(folder, staged, stale, record)
    except (OSError, InputRejectedError) as e:
        text = e.message if isinstance(e, InputRejectedError) else str(e.strerror)
        raise InputRejectedError(
            f"the freeze is recorded (ledger entry {seq}) but {folder} could not be updated: "
            f"{text}",
            hint=f"fix the folder and run '{REGENERATE}' again: it rewrites the folder from the "
            "ledger without appending again",
        ) from None
    return FreezeResult(
        True, seq, version, digests, changes, folder, written, removed, warnings + capped
    )
