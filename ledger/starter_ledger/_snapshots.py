"""Schema snapshots as bytes: where they come from, their canonical form, and the committed folder.

For: the snapshot sources (entry points of ``ENTRY_POINT_GROUP``) and what they produce now
(``current_snapshots``); the canonical form (``render``) and its ``digest``; reading the committed
folder strictly (``read_snapshots``) or one JSON file of it (``read_json``), each error naming the
file and the command that regenerates it; a readable ``unified_diff`` between two sets.
Re-exported by ``starter_ledger.freeze``, the public entry. Not for: the freeze record
(``_freeze_record``), writing the folder (``_freeze_folder``) or classifying changes
(``schemadiff``).

Sources. Every entry point of the ``starter_ledger.snapshots`` group is a callable returning
``{file name: JSON document}``: starter-contracts gives the JSON Schema of each contract model,
the backend its OpenAPI document. The entry points are the CLI's only way to the backend.

The canonical snapshot form is ``render(document)``: ``json.dumps(document, sort_keys=True,
indent=2, ensure_ascii=False)`` and a newline, in UTF-8; a snapshot's digest is ``sha256:`` and
the hex SHA-256 of those bytes. RFC 8785 (the ledger's canonicaliser) is deliberately not used:
snapshots are committed and must diff readably, line by line, in git and in review. Sorted keys
and fixed indentation make this form just as unique for a given document. A file in any other
form was edited by hand and is refused; CRLF line ends (a Windows checkout) are read as LF.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

from starter_events.schemas import SNAPSHOT_NAME
from starter_ledger.errors import InputRejectedError

__all__ = [
    "ENTRY_POINT_GROUP",
    "FROZEN_FILE",
    "REGENERATE",
    "Source",
    "current_snapshots",
    "digest",
    "installed_contracts_version",
    "read_json",
    "read_snapshots",
    "render",
    "snapshot_paths",
    "snapshot_sources",
    "unified_diff",
]

ENTRY_POINT_GROUP = "starter_ledger.snapshots"
FROZEN_FILE = "FROZEN.json"
#: The command that regenerates the snapshot folder (named in every error about it).
REGENERATE = "starter-cli contracts freeze"
_REINSTALL = "reinstall with pip install -e ./contracts -e ."
_DIFF_LINES_PER_FILE = 200
_DIFF_LINES = 800

#: A snapshot source: a label for messages, and the callable giving ``{file name: document}``.
Source = tuple[str, Callable[[], Mapping[str, Any]]]


# -- the canonical form ----------------------------------------------------------------------


def render(document: Any) -> bytes:
    """The canonical snapshot form of ``document`` (see the module docstring)."""
    text = json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
    return (text + "\n").encode("utf-8")


def digest(data: bytes) -> str:
    """``sha256:<hex>`` of a snapshot file's bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- sources ---------------------------------------------------------------------------------


def installed_contracts_version() -> str:
    """The ``starter-contracts`` version, read from its version module (the one source of
    truth, which ``release bump`` writes; an editable install's metadata would lag behind)."""
    try:
        import starter_contracts
    except ImportError:
        raise InputRejectedError("starter-contracts is not installed", hint=_REINSTALL) from None
    return str(starter_contracts.__version__)


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


# -- the committed folder --------------------------------------------------------------------


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("an object has a duplicate member name")
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def read_json(path: Path, what: str) -> tuple[bytes, Any]:
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


def snapshot_paths(folder: Path) -> list[Path]:
    """The visible ``*.json`` files of ``folder`` other than the freeze record, by name."""
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
    for path in snapshot_paths(folder):
        if not re.fullmatch(SNAPSHOT_NAME, path.name):
            raise InputRejectedError(
                f"{path} is not a snapshot file name", hint=f"remove it and run '{REGENERATE}'"
            )
        data, document = read_json(path, "snapshot")
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
