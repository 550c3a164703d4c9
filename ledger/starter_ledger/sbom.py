"""CycloneDX SBOMs of the environment or of a built wheel, stored content-addressed and recorded.

For: generating a CycloneDX JSON SBOM with ``cyclonedx-bom`` (``cyclonedx-py environment
--output-reproducible``: no serial number, no timestamp unless ``SOURCE_DATE_EPOCH`` gives one, so
the same environment gives the same bytes), validating it against the CycloneDX JSON schema
(cyclonedx-python-lib's strict validator), storing it as ``<store>/<sha256>.cdx.json`` (0644,
written atomically, never re-derived), diffing components, and appending ``sbom.recorded``.

A wheel is described by a throw-away virtual environment (``python -m venv --without-pip``, no
network, nothing installed) holding only core metadata: the wheel's own ``METADATA`` taken from
the archive, and the ``METADATA`` (and ``direct_url.json``) of every distribution its
``Requires-Dist`` closure resolves to in *this* environment (markers evaluated, extras followed).
``cyclonedx-py environment`` then describes exactly that set, with the same component form as an
environment SBOM. ``cyclonedx-py requirements`` was not chosen: it sees unpinned specifiers, not
versions, and no licences. A requirement this environment does not satisfy is an error: an SBOM
that silently misses a component is worse than none.

Not for: vulnerability audits (``starter_ledger.audit``) or the event model
(``starter_events.supplychain``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from email.parser import BytesParser
from importlib import metadata
from pathlib import Path
from typing import Any

from starter_events.supplychain import (
    ComponentChange,
    ComponentRef,
    SbomDiff,
    SbomRecordedPayload,
)
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
#: The CycloneDX version generated unless asked otherwise (cyclonedx-bom's own default).
DEFAULT_SPEC_VERSION = "1.6"
#: CycloneDX versions that have a JSON schema (1.0 and 1.1 are XML only).
JSON_SPEC_VERSIONS = ("1.2", "1.3", "1.4", "1.5", "1.6", "1.7")
#: A component without a version (CycloneDX allows it) is shown with this one.
NO_VERSION = "unversioned"
#: Largest SBOM file accepted (64 MiB).
MAX_SBOM_BYTES = 64 << 20
_TIMEOUT = 600
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class SbomError(LedgerError):
    """An SBOM could not be generated (the generator failed) or read (a corrupt stored file)."""

    exit_code = InputRejectedError.exit_code


@dataclass(frozen=True)
class Sbom:
    """A validated CycloneDX JSON document: its verbatim bytes and what the ledger records."""

    data: bytes
    sha256: str
    spec_version: str
    #: Component key (purl without version, else name) -> (display name, version), all levels.
    components: Mapping[str, tuple[str, str]]
    count: int


@dataclass(frozen=True)
class RecordedSbom:
    """An ``sbom.recorded`` entry: where it is in the ledger and what it says."""

    seq: int
    occurred_at: str
    payload: SbomRecordedPayload


# -- parsing and validation -----------------------------------------------------------------


def _walk(components: Any, where: str) -> Iterator[dict[str, Any]]:
    if not isinstance(components, list):
        raise InputRejectedError(f"SBOM {where}: 'components' is not a list")
    for c in components:
        if not isinstance(c, dict):
            raise InputRejectedError(f"SBOM {where}: a component is not an object")
        yield c
        if "components" in c:
            yield from _walk(c["components"], where)


def _key(component: Mapping[str, Any]) -> str:
    purl = component.get("purl")
    if isinstance(purl, str) and purl:
        return purl.split("?", 1)[0].split("#", 1)[0].rsplit("@", 1)[0].lower()
    return str(component.get("name", "")).lower()


def component_map(doc: Mapping[str, Any], where: str) -> tuple[dict[str, tuple[str, str]], int]:
    """Components by key with their (name, version); a name installed twice lists both
    versions, comma-separated. Also the number of components at every level."""
    found: dict[str, tuple[str, set[str]]] = {}
    count = 0
    for c in _walk(doc.get("components", []), where):
        count += 1
        name = str(c.get("name") or "")
        version = str(c.get("version") or NO_VERSION)
        entry = found.setdefault(_key(c), (name, set()))
        entry[1].add(version)
    return {k: (n, ",".join(sorted(v))) for k, (n, v) in found.items()}, count


def parse_sbom(data: bytes, where: str, *, validate: bool = True) -> Sbom:
    """Check ``data`` is a CycloneDX JSON SBOM valid against its schema; ``where`` names the
    file in errors. ``validate=False`` skips the (slow) schema check for a stored file whose
    digest the ledger vouches for."""
    hint = "generate it again with 'starter-cli sbom record'"
    if len(data) > MAX_SBOM_BYTES:
        raise InputRejectedError(f"SBOM {where} is over {MAX_SBOM_BYTES} bytes", hint=hint)
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as e:
        raise InputRejectedError(f"SBOM {where} is not JSON: {str(e)[:160]}", hint=hint) from None
    if not isinstance(doc, dict) or doc.get("bomFormat") != "CycloneDX":
        raise InputRejectedError(f"SBOM {where} is not a CycloneDX JSON document", hint=hint)
    spec = doc.get("specVersion")
    if spec not in JSON_SPEC_VERSIONS:
        raise InputRejectedError(
            f"SBOM {where} has CycloneDX specVersion {str(spec)[:20]!r}, not one of "
            f"{', '.join(JSON_SPEC_VERSIONS)}",
            hint=hint,
        )
    if validate:
        _validate_schema(data, str(spec), where)
    components, count = component_map(doc, where)
    return Sbom(data, hashlib.sha256(data).hexdigest(), str(spec), components, count)


def _validate_schema(data: bytes, spec: str, where: str) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    try:
        error = JsonStrictValidator(SchemaVersion.from_version(spec)).validate_str(data.decode())
    except (ValueError, UnicodeDecodeError) as e:
        raise InputRejectedError(f"SBOM {where} cannot be validated: {str(e)[:160]}") from None
    if error is not None:
        detail = getattr(error.data, "message", str(error.data))
        path = "/".join(str(p) for p in getattr(error.data, "absolute_path", []))
        raise InputRejectedError(
            f"SBOM {where} is not valid CycloneDX {spec}: at /{path}: {str(detail)[:200]}",
            hint="generate it again with 'starter-cli sbom record'",
        )


# -- generation -----------------------------------------------------------------------------


def _cyclonedx(python: str, spec_version: str) -> bytes:
    if spec_version not in JSON_SPEC_VERSIONS:
        raise InputRejectedError(
            f"CycloneDX spec version {spec_version!r} has no JSON form",
            hint=f"use one of {', '.join(JSON_SPEC_VERSIONS)}",
        )
    cmd = [sys.executable, "-m", "cyclonedx_py", "environment", "--output-reproducible"]
    cmd += ["--no-validate", "--sv", spec_version, "--of", "JSON", "-o", "-", python]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SbomError(f"cannot run cyclonedx-py: {e}", hint="pip install cyclonedx-bom") from None
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise SbomError(
            f"cyclonedx-py failed for {python} (exit {proc.returncode}): {tail[0][:300]}",
            hint="re-run with 'cyclonedx-py environment -v' to see why",
        )
    return proc.stdout


def environment_sbom(python: str | None = None, spec_version: str = DEFAULT_SPEC_VERSION) -> Sbom:
    """The validated SBOM of the environment of ``python`` (default: this interpreter's)."""
    data = _cyclonedx(python or sys.executable, spec_version)
    return parse_sbom(data, f"of {python or 'this environment'}")


def _wheel_metadata(wheel: Path) -> bytes:
    """The ``METADATA`` of a wheel file; refuses files that are not wheels."""
    hint = "pass a wheel built by 'python -m build' or 'hatch build'"
    if not wheel.name.endswith(".whl") or wheel.name.count("-") < 4:
        raise InputRejectedError(f"{wheel} is not named like a wheel (NAME-VER-PY-ABI-PLAT.whl)")
    try:
        with zipfile.ZipFile(wheel) as zf:
            names = [n for n in zf.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
            if len(names) != 1:
                raise InputRejectedError(
                    f"wheel {wheel} has no single .dist-info/METADATA", hint=hint
                )
            return zf.read(names[0])
    except FileNotFoundError:
        raise InputRejectedError(f"no wheel at {wheel}") from None
    except (OSError, zipfile.BadZipFile, KeyError) as e:
        raise InputRejectedError(f"wheel {wheel} cannot be read: {e}", hint=hint) from None


def _closure(requires: Iterable[str], own: str) -> list[metadata.Distribution]:
    """The installed distributions that ``requires`` resolves to here, transitively."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    todo: list[tuple[str, str]] = [(r, "") for r in requires]
    seen: dict[str, metadata.Distribution] = {}
    missing: list[str] = []
    done: set[tuple[str, str]] = set()
    while todo:
        text, extra = todo.pop()
        try:
            req = Requirement(text)
        except InvalidRequirement as e:
            raise InputRejectedError(f"invalid requirement {text!r}: {e}") from None
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(req.name)
        if name == own:
            continue
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            missing.append(str(req))
            continue
        if not req.specifier.contains(dist.version, prereleases=True):
            missing.append(f"{req} (installed: {dist.version})")
        seen.setdefault(name, dist)
        for ex in ("", *sorted(req.extras)):
            if (name, ex) not in done:
                done.add((name, ex))
                todo.extend((r, ex) for r in dist.requires or [])
    if missing:
        raise InputRejectedError(
            f"this environment does not satisfy the wheel's requirements: {'; '.join(missing)}",
            hint="install the wheel's dependencies here (pip install WHEEL), then record again",
        )
    return [seen[k] for k in sorted(seen)]


def wheel_sbom(wheel: Path, spec_version: str = DEFAULT_SPEC_VERSION) -> Sbom:
    """The validated SBOM of ``wheel`` and its dependency closure as resolved here."""
    from packaging.utils import canonicalize_name

    meta = _wheel_metadata(wheel)
    parsed = BytesParser().parsebytes(meta, headersonly=True)
    own = canonicalize_name(str(parsed.get("Name", "")))
    with tempfile.TemporaryDirectory(prefix="starter-sbom-") as tmp:
        venv = Path(tmp) / "venv"
        try:
            subprocess.run(
                [sys.executable, "-m", "venv", "--without-pip", str(venv)],
                check=True,
                capture_output=True,
                timeout=_TIMEOUT,
            )
        except (OSError, subprocess.SubprocessError) as e:
            raise SbomError(f"cannot make a temporary environment in {tmp}: {e}") from None
        site = next((venv / "lib").glob("python*/site-packages"), None) or (
            venv / "Lib" / "site-packages"
        )
        _write_dist(site, own, str(parsed.get("Version", "0")), {"METADATA": meta})
        for dist in _closure(parsed.get_all("Requires-Dist") or [], own):
            files = {"METADATA": (dist.read_text("METADATA") or "").encode()}
            direct = dist.read_text("direct_url.json")
            if direct is not None:
                files["direct_url.json"] = direct.encode()
            _write_dist(site, canonicalize_name(dist.metadata["Name"]), dist.version, files)
        python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
        data = _cyclonedx(str(python), spec_version)
    return parse_sbom(data, f"of wheel {wheel.name}")


def _write_dist(site: Path, name: str, version: str, files: Mapping[str, bytes]) -> None:
    folder = site / f"{name.replace('-', '_')}-{version}.dist-info"
    folder.mkdir(parents=True, exist_ok=True)
    for fname, content in files.items():
        (folder / fname).write_bytes(content)


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
