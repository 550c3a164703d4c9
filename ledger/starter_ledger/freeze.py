"""The schema freeze: committed snapshots of the contracts' schemas, signed into the ledger.

For: ``freeze`` (``starter-cli contracts freeze``) and ``check`` (``starter-cli contracts check``,
run by CI), and their parts: ``current_snapshots``, ``read_snapshots``, ``render``,
``verify_record``. Not for: classifying changes (``schemadiff``), the ``schema.frozen`` payload
(``starter_events.schemas``) or verifying a whole ledger (``verify``).

Sources. Every entry point of the ``starter_ledger.snapshots`` group is a callable returning
``{file name: JSON document}``: starter-contracts gives the JSON Schema of each contract model,
the backend its OpenAPI document. The entry points are the CLI's only way to the backend.

The canonical snapshot form is ``render(document)``: ``json.dumps(document, sort_keys=True,
indent=2, ensure_ascii=False)`` and a newline, in UTF-8; a snapshot's digest is ``sha256:`` and
the hex SHA-256 of those bytes. RFC 8785 (the ledger's canonicaliser) is deliberately not used:
snapshots are committed and must diff readably, line by line, in git and in review. Sorted keys
and fixed indentation make this form just as unique for a given document. A file in any other
form was edited by hand and is refused; CRLF line ends (a Windows checkout) are read as LF.

The freeze record. Beside the snapshots, ``FROZEN.json`` holds the ``schema.frozen`` entry
verbatim (compact JWS), its seq and RFC 9162 leaf hash, its inclusion proof against the signed
checkpoint written with it, the ledger's origin and the signer's public JWK. From it ``check``
proves offline (a CI clone has no ledger) that the snapshot files are exactly those whose
digests a ledger signer froze. Which signer to trust is the caller's to pin (``trusted_kids``).

Crash safety. ``freeze`` first stages the changed snapshot files as hidden temporary files beside
them (a folder that cannot be written refuses before anything is appended), then appends the
event, then renames the files into place, removes stale snapshots, and writes ``FROZEN.json``
last. A crash in between leaves a folder whose files and record disagree with each other or
with the code, which ``check`` reports naming the files; the next ``freeze`` sees that the
ledger's newest ``schema.frozen`` already has the code's digests and rewrites the folder from
that entry without appending again.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import os
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

from starter_contracts import StarterError
from starter_events import SchemaChange, SchemaFrozenPayload, validate_payload
from starter_events.schemas import SNAPSHOT_NAME
from starter_ledger.encoding import b64_decode, b64_encode
from starter_ledger.entry import decode_entry
from starter_ledger.errors import InputRejectedError, LedgerUnavailableError, ProofError
from starter_ledger.files import atomic_write
from starter_ledger.keys import Signer, Verifier, public_jwk, public_key_bytes, thumbprint
from starter_ledger.ledger import Ledger
from starter_ledger.merkle import leaf_hash, verify_inclusion
from starter_ledger.note import parse_checkpoint, parse_note
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

ENTRY_POINT_GROUP = "starter_ledger.snapshots"
FROZEN_FILE = "FROZEN.json"
FROZEN_TYPE = "schema.frozen"
#: The command that regenerates the snapshot folder (named in every error about it).
REGENERATE = "starter-cli contracts freeze"
_REINSTALL = "reinstall with pip install -e ./contracts -e ."
_MAX_CHANGES = 4096  # SchemaFrozenPayload.changes
_DIFF_LINES_PER_FILE = 200
_DIFF_LINES = 800

#: A snapshot source: a label for messages, and the callable giving ``{file name: document}``.
Source = tuple[str, Callable[[], Mapping[str, Any]]]


# -- snapshots -------------------------------------------------------------------------------


def render(document: Any) -> bytes:
    """The canonical snapshot form of ``document`` (see the module docstring)."""
    text = json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
    return (text + "\n").encode("utf-8")


def digest(data: bytes) -> str:
    """``sha256:<hex>`` of a snapshot file's bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def installed_contracts_version() -> str:
    """The installed ``starter-contracts`` version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("starter-contracts")
    except PackageNotFoundError:
        raise InputRejectedError("starter-contracts is not installed", hint=_REINSTALL) from None


def snapshot_sources() -> list[Source]:
    """The installed sources (entry points of ``ENTRY_POINT_GROUP``), by name; loaded on call."""
    from importlib.metadata import entry_points

    def loader(ep: EntryPoint) -> Callable[[], Mapping[str, Any]]:
        def produce() -> Mapping[str, Any]:
            function: Callable[[], Mapping[str, Any]] = ep.load()
            return function()

        return produce

    found = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: (e.name, e.value))
    return [(f"{ep.name} ({ep.value})", loader(ep)) for ep in found]


def current_snapshots(sources: Sequence[Source] | None = None) -> dict[str, bytes]:
    """``{file name: canonical bytes}`` of what the installed code produces now."""
    found = snapshot_sources() if sources is None else list(sources)
    if not found:
        raise InputRejectedError(
            f"no schema snapshot sources are installed (entry point group {ENTRY_POINT_GROUP})",
            hint=_REINSTALL,
        )
    out: dict[str, bytes] = {}
    producer: dict[str, str] = {}
    for label, produce in found:
        try:
            documents = produce()
        except Exception as e:  # a plug-in's own failure, whatever it is, names the plug-in
            raise InputRejectedError(
                f"snapshot source {label} failed: {type(e).__name__}: {e!s:.200}",
                hint=_REINSTALL,
            ) from None
        if not isinstance(documents, Mapping):
            raise InputRejectedError(
                f"snapshot source {label} returned {type(documents).__name__}, not a mapping "
                "of file names to JSON documents"
            )
        for name, document in documents.items():
            if not isinstance(name, str) or not re.fullmatch(SNAPSHOT_NAME, name):
                raise InputRejectedError(
                    f"snapshot source {label} names a file {name!r}: not a plain *.json name"
                )
            if name == FROZEN_FILE or name in producer:
                other = producer.get(name, "the freeze record")
                raise InputRejectedError(
                    f"snapshot sources {other} and {label} both produce {name}",
                    hint="rename one of the files, or uninstall the package that duplicates it",
                )
            try:
                out[name] = render(document)
            except (TypeError, ValueError, RecursionError) as e:
                raise InputRejectedError(
                    f"snapshot {name} from source {label} is not JSON: {e!s:.160}"
                ) from None
            producer[name] = label
    return dict(sorted(out.items()))


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("an object has a duplicate member name")
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _read(path: Path, what: str) -> tuple[bytes, Any]:
    """The bytes (CRLF read as LF) and the parsed JSON of a file; errors name it and the fix."""
    try:
        data = path.read_bytes().replace(b"\r\n", b"\n")
    except OSError as e:
        raise InputRejectedError(
            f"cannot read {what} {path}: {e.strerror}", hint=f"regenerate it with '{REGENERATE}'"
        ) from None
    try:
        document = json.loads(
            data.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constant
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise InputRejectedError(
            f"{what} {path} is not valid JSON: {e!s:.160}",
            hint=f"regenerate it with '{REGENERATE}' (snapshots are never edited by hand)",
        ) from None
    return data, document


def _snapshot_paths(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.name.endswith(".json") and not p.name.startswith(".") and p.name != FROZEN_FILE
    )


def read_snapshots(folder: Path) -> dict[str, bytes]:
    """The committed snapshot files in ``folder``; refuses a missing folder, a file that is not
    JSON or not in the canonical form, naming the file and the command that regenerates it."""
    if not folder.is_dir():
        state = "is not a folder" if folder.exists() else "does not exist"
        raise InputRejectedError(
            f"snapshot folder {folder} {state}",
            hint=f"create it with '{REGENERATE}', or point --snapshots (STARTER_SNAPSHOTS_DIR) "
            "at the committed snapshots",
        )
    out: dict[str, bytes] = {}
    for path in _snapshot_paths(folder):
        if not re.fullmatch(SNAPSHOT_NAME, path.name):
            raise InputRejectedError(
                f"{path} is not a snapshot file name", hint=f"remove it and run '{REGENERATE}'"
            )
        data, document = _read(path, "snapshot")
        if render(document) != data:
            raise InputRejectedError(
                f"snapshot {path} is not in the canonical snapshot form: it was edited by hand",
                hint=f"restore it from version control, or regenerate it with '{REGENERATE}'",
            )
        out[path.name] = data
    if not out:
        raise InputRejectedError(
            f"snapshot folder {folder} holds no snapshots", hint=f"create them with '{REGENERATE}'"
        )
    return out


def read_record(folder: Path) -> dict[str, Any]:
    """``FROZEN.json`` of ``folder``, parsed; missing or not JSON is an error naming the fix."""
    path = folder / FROZEN_FILE
    if not path.is_file():
        raise InputRejectedError(
            f"no freeze record {path}",
            hint=f"run '{REGENERATE}' and commit {FROZEN_FILE} with the snapshots",
        )
    _, document = _read(path, "freeze record")
    if not isinstance(document, dict):
        raise InputRejectedError(
            f"freeze record {path} is not a JSON object", hint=f"regenerate it with '{REGENERATE}'"
        )
    return document


# -- the freeze record -----------------------------------------------------------------------


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
    pass


def _record_document(
    *, origin: str, seq: int, raw: bytes, proof: list[bytes], checkpoint: str, jwk: dict[str, str]
) -> dict[str, Any]:
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


def _frozen_entries(ledger: Ledger) -> list[tuple[int, bytes]]:
    return ledger.store.entries_of_types([FROZEN_TYPE])


def _ledger_problems(ledger: Ledger, check: RecordCheck) -> list[str]:
    """A record that verifies must also be the ledger's newest freeze, byte for byte."""
    if check.entry is None or check.seq is None:
        return []
    frozen = _frozen_entries(ledger)
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


def _documents(files: Mapping[str, bytes], names: Collection[str]) -> dict[str, Any]:
    return {name: json.loads(files[name]) for name in names if name in files}


def unified_diff(folder: Path, old: Mapping[str, bytes], new: Mapping[str, bytes]) -> str:
    """A unified diff per differing file, frozen (``old``) to code (``new``), cut to length."""
    out: list[str] = []
    for name in sorted(old.keys() | new.keys()):
        if old.get(name) == new.get(name):
            continue
        lines = list(
            difflib.unified_diff(
                old.get(name, b"").decode("utf-8").splitlines(keepends=True),
                new.get(name, b"").decode("utf-8").splitlines(keepends=True),
                f"{folder / name} (frozen)",
                f"{name} (code)",
            )
        )
        room = min(_DIFF_LINES_PER_FILE, _DIFF_LINES - len(out))
        if len(lines) > room:
            lines = [*lines[: max(room, 0)], f"... {len(lines) - room} more lines of {name}\n"]
        out.extend(lines)
    return "".join(out)


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
    code = current_snapshots(sources)
    record = verify_record(document, files, trusted_kids)
    problems = list(record.problems)
    if ledger is not None:
        problems += _ledger_problems(ledger, record)
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


@dataclass
class _Folder:
    """The snapshot folder as it is, read leniently (``freeze`` must repair any state)."""

    #: Snapshot files that are JSON (CRLF read as LF).
    files: dict[str, bytes] = field(default_factory=dict)
    #: Every file with a snapshot name, JSON or not.
    names: set[str] = field(default_factory=set)
    record: dict[str, Any] | None = None

    @classmethod
    def read(cls, folder: Path) -> _Folder:
        out = cls()
        if not folder.is_dir():
            return out
        for path in _snapshot_paths(folder):
            if re.fullmatch(SNAPSHOT_NAME, path.name):
                out.names.add(path.name)
                with contextlib.suppress(InputRejectedError):
                    out.files[path.name] = _read(path, "snapshot")[0]
        with contextlib.suppress(InputRejectedError):
            out.record = read_record(folder)
        return out

    def digests(self) -> dict[str, str]:
        return {name: digest(data) for name, data in self.files.items()}

    def stale(self, current: Collection[str], last: _Frozen | None) -> list[str]:
        """Snapshot files no longer produced that a freeze wrote: ``*.schema.json`` or named by
        the last freeze (other JSON files are left for ``check`` to report)."""
        ours = set(last[2].snapshots) if last is not None else set()
        with contextlib.suppress(StarterError, KeyError, TypeError, ValueError, AttributeError):
            if self.record is not None:
                ours |= set(
                    decode_entry(self.record["entry"].encode()).envelope.payload["snapshots"]
                )
        return sorted(
            n for n in self.names - set(current) if n.endswith(".schema.json") or n in ours
        )


#: The newest stored freeze: seq, entry bytes, payload.
_Frozen = tuple[int, bytes, SchemaFrozenPayload]


def _last_freeze(ledger: Ledger) -> _Frozen | None:
    frozen = _frozen_entries(ledger)
    if not frozen:
        return None
    seq, raw = frozen[-1]
    env = decode_entry(raw).envelope
    payload = validate_payload(env.type, env.schema_version, env.payload)
    return (seq, raw, payload) if isinstance(payload, SchemaFrozenPayload) else None


def _baseline(
    folder: Path, state: _Folder, last: _Frozen | None
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


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can open a folder
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _stage(folder: Path, files: Mapping[str, bytes]) -> list[tuple[Path, Path]]:
    """Write each file to a hidden temporary beside its target, durably; nothing on failure."""
    staged: list[tuple[Path, Path]] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            tmp = folder / f".{name}.tmp-{os.getpid()}"
            staged.append((tmp, folder / name))
            with tmp.open("wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
    except OSError as e:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise InputRejectedError(
            f"cannot write the snapshot folder {folder}: {e.strerror}",
            hint="make it writable, or point --snapshots (STARTER_SNAPSHOTS_DIR) elsewhere",
        ) from None
    return staged


def _write_folder(
    folder: Path, staged: list[tuple[Path, Path]], stale: list[str], record: dict[str, Any]
) -> tuple[list[str], list[str]]:
    """Move the staged files into place, remove the stale ones, then write FROZEN.json."""
    for tmp, target in staged:
        tmp.replace(target)
    for name in stale:
        (folder / name).unlink(missing_ok=True)
    for path in folder.iterdir():
        if path.name.startswith(".") and ".json.tmp-" in path.name:
            path.unlink(missing_ok=True)  # left by an interrupted freeze
    _fsync_folder(folder)
    with atomic_write(folder / FROZEN_FILE, "freeze record") as f:
        f.write(render(record))
    return sorted(target.name for _, target in staged), stale


def _changed(state: _Folder, current: Mapping[str, bytes]) -> dict[str, bytes]:
    """The files of ``current`` that the folder does not hold byte for byte."""
    return {n: d for n, d in current.items() if state.files.get(n) != d}


def _record_from_ledger(ledger: Ledger, seq: int, raw: bytes) -> dict[str, Any]:
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
    return _record_document(
        origin=entry.envelope.origin,
        seq=seq,
        raw=raw,
        proof=proof,
        checkpoint=note,
        jwk=public_jwk(public_key),
    )


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
    current = current_snapshots(sources)
    digests = {name: digest(data) for name, data in current.items()}
    state = _Folder.read(folder)
    if state.record is not None and state.files == current:
        done = verify_record(state.record, state.files)
        if done.ok and done.payload is not None and done.seq is not None:
            return FreezeResult(
                False, done.seq, done.payload.contracts_version, digests, [], folder
            )
    last = _last_freeze(ledger)
    if last is not None and last[2].snapshots == digests:
        seq, raw, payload = last
        staged = _stage(folder, _changed(state, current))
        record = _record_from_ledger(ledger, seq, raw)
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
    staged = _stage(folder, _changed(state, current))
    try:
        result = ledger.append(FROZEN_TYPE, payload_doc, signer, actor)
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    seq, raw = result.first_seq, result.entries[0]
    record = _record_document(
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
