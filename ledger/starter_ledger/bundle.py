"""Export bundles: a whole ledger in one JSON Lines file, verifiable offline.

For: ``export_bundle`` (written to a temporary file, fsynced, then renamed: never half-written) and
``BundleSource`` (streams a bundle back for ``verify``). Line 1 is a header object; then one object
per entry ``{"seq": N, "entry": "<JWS>"}`` in order, each stored checkpoint ``{"checkpoint":
"<note>"}`` right after the entry that completes its tree size. ``docs/ledger-format.md`` is the
normative text. Not for: importing a bundle into a new database.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from starter_ledger.errors import FormatError, InputRejectedError
from starter_ledger.files import atomic_write
from starter_ledger.storage import LedgerStore

BUNDLE_FORMAT = "starter-ledger-bundle"
_COMPACT_JWS = re.compile(rb"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
BUNDLE_VERSION = 1


def export_bundle(
    store: LedgerStore,
    out: Path,
    *,
    origin: str,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Write every entry and checkpoint of ``store`` to ``out``; returns the number of entries."""
    size = store.size()
    iter_rows = getattr(store, "iter_rows", None)
    if iter_rows is not None:  # entries and checkpoints in one pass
        rows: Iterator[tuple[int, bytes, str | None]] = (r[:3] for r in iter_rows(0, size))
    else:
        checkpoints = dict(store.iter_checkpoints(1))
        rows = ((seq, raw, checkpoints.get(seq + 1)) for seq, raw in store.iter_entries(0, size))
    header = {"format": BUNDLE_FORMAT, "origin": origin, "size": size, "version": BUNDLE_VERSION}
    with atomic_write(out, "bundle") as f:
        f.write(json.dumps(header, sort_keys=True).encode() + b"\n")
        for seq, raw, checkpoint in rows:
            if not _COMPACT_JWS.fullmatch(raw):
                raise FormatError(
                    f"stored entry {seq} is not a compact JWS; the ledger is damaged",
                    hint="run 'starter-cli ledger verify' to see what is wrong",
                )
            f.write(b'{"entry":"' + raw + b'","seq":' + str(seq).encode() + b"}\n")
            if checkpoint is not None:
                f.write(json.dumps({"checkpoint": checkpoint}).encode() + b"\n")
            if progress is not None and seq % 4096 == 0:
                progress(seq + 1, size)
    if progress is not None:
        progress(size, size)
    return size


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        msg = "an object has duplicate members"
        raise ValueError(msg)
    return dict(pairs)


class BundleSource:
    """Reads a bundle for verification without loading it into memory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            with path.open("r", encoding="utf-8") as f:
                first = f.readline()
        except FileNotFoundError:
            raise InputRejectedError(
                f"no bundle at {path}",
                hint="create one with 'starter-cli ledger export --out FILE'",
            ) from None
        except (OSError, UnicodeDecodeError) as e:
            raise InputRejectedError(f"cannot read bundle {path}: {e}") from None
        header = self._json(first, 1)
        if header.get("format") != BUNDLE_FORMAT or header.get("version") != BUNDLE_VERSION:
            raise FormatError(
                f"{path} is not a {BUNDLE_FORMAT} v{BUNDLE_VERSION} file",
                hint="export it with 'starter-cli ledger export'",
            )
        size = header.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise FormatError(f"{path}: header size must be a non-negative integer")
        self.size: int = size
        self.origin = str(header.get("origin", ""))

    def _json(self, line: str, lineno: int) -> dict[str, Any]:
        try:
            value = json.loads(line, object_pairs_hook=_no_duplicates)
        except (ValueError, RecursionError) as e:
            raise FormatError(
                f"{self.path} line {lineno} is not acceptable JSON: {str(e)[:120]}"
            ) from None
        if not isinstance(value, dict):
            raise FormatError(f"{self.path} line {lineno} is not a JSON object")
        return value

    def _objects(self) -> Iterator[tuple[int, dict[str, Any]]]:
        try:
            with self.path.open("rb") as f:
                f.readline()
                for lineno, raw in enumerate(f, start=2):
                    try:
                        line = raw.decode("utf-8")
                    except UnicodeDecodeError:
                        raise FormatError(f"{self.path} line {lineno} is not UTF-8") from None
                    yield lineno, self._json(line, lineno)
        except OSError as e:
            raise FormatError(f"cannot read bundle {self.path}: {e.strerror}") from None

    def iter_entries(self, start: int = 0, chunk: int = 0) -> Iterator[tuple[int, bytes]]:
        for lineno, obj in self._objects():
            if "entry" in obj:
                seq, entry = obj.get("seq"), obj["entry"]
                if (
                    set(obj) != {"entry", "seq"}
                    or type(seq) is not int
                    or not isinstance(entry, str)
                    or not entry.isascii()
                ):
                    raise FormatError(f"{self.path} line {lineno}: malformed entry line")
                if seq >= start:
                    yield seq, entry.encode("ascii")
            elif "checkpoint" not in obj:
                raise FormatError(f"{self.path} line {lineno}: neither an entry nor a checkpoint")

    def iter_checkpoints(self, start_size: int = 0) -> Iterator[tuple[int, str]]:
        for lineno, obj in self._objects():
            note = obj.get("checkpoint")
            if note is None:
                continue
            if set(obj) != {"checkpoint"} or not isinstance(note, str):
                raise FormatError(f"{self.path} line {lineno}: malformed checkpoint line")
            size_line = note.split("\n", 2)[1] if note.count("\n") >= 2 else ""
            if not (size_line.isascii() and size_line.isdigit() and len(size_line) <= 19):
                raise FormatError(f"{self.path} line {lineno}: checkpoint has no size line")
            if int(size_line) >= start_size:
                yield int(size_line), note
