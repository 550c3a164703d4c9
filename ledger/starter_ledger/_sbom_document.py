"""CycloneDX JSON documents: the SBOM value, its parsing, and validation against the schema.

For: ``Sbom`` (verbatim bytes, digest, spec version and the component map a diff reads),
``parse_sbom`` (JSON, ``bomFormat``, a spec version with a JSON schema, then cyclonedx-python-lib's
strict schema validator) and ``component_map``. Not for: generating SBOMs (``_sbom_generate``) or
storing and recording them (``sbom``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from starter_ledger.errors import InputRejectedError, LedgerError

#: The CycloneDX version generated unless asked otherwise (cyclonedx-bom's own default).
DEFAULT_SPEC_VERSION = "1.6"
#: CycloneDX versions that have a JSON schema (1.0 and 1.1 are XML only).
JSON_SPEC_VERSIONS = ("1.2", "1.3", "1.4", "1.5", "1.6", "1.7")
#: A component without a version (CycloneDX allows it) is shown with this one.
NO_VERSION = "unversioned"
#: Largest SBOM file accepted (64 MiB).
MAX_SBOM_BYTES = 64 << 20


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
