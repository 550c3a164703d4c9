"""SBOMs stored content-addressed and recorded in the ledger; the package's public surface.

For: storing a validated CycloneDX JSON SBOM as ``<store>/<sha256>.cdx.json`` (0644, written
atomically, never re-derived), diffing components between SBOMs of one subject, appending
``sbom.recorded``, and checking stored files against the ledger. Generation lives in
``_sbom_generate`` (``environment_sbom``, ``wheel_sbom``, with ``cyclonedx-bom``) and parsing and
schema validation in ``_sbom_document`` (``Sbom``, ``parse_sbom``); both are re-exported here.
Not for: vulnerability audits (``starter_ledger.audit``) or the event model
(``starter_events.supplychain``).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from starter_events.supplychain import (
    ComponentChange,
    ComponentRef,
    SbomDiff,
    SbomRecordedPayload,
)
from starter_ledger._sbom_document import (
    DEFAULT_SPEC_VERSION,
    JSON_SPEC_VERSIONS,
    Sbom,
    SbomError,
    component_map,
    parse_sbom,
)
from starter_ledger._sbom_generate import environment_sbom, wheel_sbom
from starter_ledger.errors import InputRejectedError, LedgerError
from starter_ledger.files import atomic_write
from starter_ledger.keys import Signer
from starter_ledger.ledger import AppendResult, Ledger

__all__ = [
    "DEFAULT_SPEC_VERSION",
    "JSON_SPEC_VERSIONS",
    "SBOM_EVENT",
    "RecordedSbom",
    "Sbom",
    "SbomError",
    "SbomRecord",
    "SbomStore",
    "component_map",
    "diff_components",
    "environment_sbom",
    "parse_sbom",
    "record_sbom",
    "recorded_sboms",
    "subject_key",
    "verify_stored",
    "wheel_sbom",
]

SBOM_EVENT = "sbom.recorded"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class RecordedSbom:
    """An ``sbom.recorded`` entry: where it is in the ledger and what it says."""

    seq: int
    occurred_at: str
    payload: SbomRecordedPayload


# -- storage and the ledger -----------------------------------------------------------------


class SbomStore:
    """SBOM files by content: ``<folder>/<sha256>.cdx.json``, written once, read back checked."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @classmethod
    def beside(cls, ledger_url: str) -> SbomStore:
        """``sboms/`` beside a SQLite ledger file, else ``.ledger/sboms``."""
        if ledger_url.startswith("sqlite:///"):
            return cls(Path(ledger_url[len("sqlite:///") :].split("?", 1)[0]).parent / "sboms")
        return cls(Path(".ledger") / "sboms")

    def path(self, sha256: str) -> Path:
        if not _HEX64.match(sha256):
            raise InputRejectedError(f"{sha256!r} is not a SHA-256 digest (64 hex digits)")
        return self.folder / f"{sha256}.cdx.json"

    def put(self, sbom: Sbom) -> Path:
        """Store ``sbom`` (a no-op when an intact copy is there already)."""
        path = self.path(sbom.sha256)
        try:
            if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == sbom.sha256:
                return path
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputRejectedError(f"cannot use the SBOM store {self.folder}: {e}") from None
        with atomic_write(path, "SBOM") as f:
            os.fchmod(f.fileno(), 0o644)
            f.write(sbom.data)
        return path

    def get(self, sha256: str) -> Sbom:
        """The stored SBOM with this digest; a missing or altered file is an ``SbomError``."""
        path = self.path(sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise SbomError(
                f"SBOM {sha256} is not in the store {self.folder}",
                hint="pass the folder that holds it with --store",
            ) from None
        except OSError as e:
            raise SbomError(f"cannot read SBOM {path}: {e}") from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise SbomError(
                f"SBOM file {path} is corrupt: its SHA-256 is {actual}",
                hint="restore it from a backup; the ledger records the original digest",
            )
        return parse_sbom(data, str(path), validate=False)


def recorded_sboms(ledger: Ledger) -> list[RecordedSbom]:
    """Every ``sbom.recorded`` entry, oldest first."""
    found = []
    for seq, entry in ledger.entries():
        env = entry.envelope
        if env.type == SBOM_EVENT:
            payload = SbomRecordedPayload.model_validate(env.payload)
            found.append(RecordedSbom(seq, env.occurred_at, payload))
    return found


def subject_key(subject: str) -> str:
    """What SBOMs are compared with: ``environment``, or a wheel's distribution name."""
    if subject.endswith(".whl"):
        return "wheel:" + subject.split("-", 1)[0].lower()
    return subject


def diff_components(
    old: Mapping[str, tuple[str, str]], new: Mapping[str, tuple[str, str]]
) -> SbomDiff:
    """Components added, removed and with a changed version, each list sorted by name."""
    added = [ComponentRef(name=n, version=v) for k, (n, v) in new.items() if k not in old]
    removed = [ComponentRef(name=n, version=v) for k, (n, v) in old.items() if k not in new]
    changed = [
        ComponentChange(name=n, old=old[k][1], new=v)
        for k, (n, v) in new.items()
        if k in old and old[k][1] != v
    ]
    return SbomDiff(
        added=sorted(added, key=lambda c: (c.name.lower(), c.version)),
        removed=sorted(removed, key=lambda c: (c.name.lower(), c.version)),
        changed=sorted(changed, key=lambda c: (c.name.lower(), c.old)),
    )


@dataclass(frozen=True)
class SbomRecord:
    """What ``record_sbom`` did: the payload appended, the file stored, the append."""

    payload: SbomRecordedPayload
    path: Path
    previous: RecordedSbom | None
    result: AppendResult


def record_sbom(
    ledger: Ledger, store: SbomStore, sbom: Sbom, *, subject: str, signer: Signer, actor: str
) -> SbomRecord:
    """Store ``sbom`` and append ``sbom.recorded``, diffed against the previous SBOM of the
    same subject (the environment, or the same wheel distribution), whose stored file must be
    intact. The file is stored first: a failed append leaves only an unreferenced file."""
    if not 1 <= len(subject) <= 256:
        raise InputRejectedError(f"SBOM subject {subject[:40]!r}... must be 1-256 characters")
    key = subject_key(subject)
    previous = next(
        (r for r in reversed(recorded_sboms(ledger)) if subject_key(r.payload.subject) == key),
        None,
    )
    old = store.get(previous.payload.sha256).components if previous else {}
    payload = SbomRecordedPayload(
        sha256=sbom.sha256,
        spec_version=sbom.spec_version,
        components=sbom.count,
        subject=subject,
        diff=diff_components(old, sbom.components),
    )
    path = store.put(sbom)
    result = ledger.append(SBOM_EVENT, payload.model_dump(mode="json"), signer, actor)
    return SbomRecord(payload, path, previous, result)


def verify_stored(ledger: Ledger, store: SbomStore) -> list[tuple[RecordedSbom, str | None]]:
    """Each recorded SBOM with None when its stored file is intact, else what is wrong."""
    report: list[tuple[RecordedSbom, str | None]] = []
    for rec in recorded_sboms(ledger):
        try:
            store.get(rec.payload.sha256)
        except LedgerError as e:
            report.append((rec, e.message))
        else:
            report.append((rec, None))
    return report
