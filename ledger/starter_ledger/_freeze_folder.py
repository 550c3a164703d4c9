"""The snapshot folder as ``freeze`` finds and rewrites it: read leniently, written crash-safely.

For: ``SnapshotFolder`` (what the folder holds, whatever state a crash or a hand edit left it in,
which files ``freeze`` would write and which are stale), ``stage`` (hidden, fsynced temporaries
beside their targets), ``discard`` and ``write_folder`` (rename into place, remove stale
snapshots, write ``FROZEN.json`` last). Used by ``starter_ledger.freeze``. Not for: reading the
folder strictly, as ``check`` does (``_snapshots.read_snapshots``), or verifying the record
(``_freeze_record``).

Crash safety. ``freeze`` first stages the changed snapshot files as hidden temporary files beside
them (a folder that cannot be written refuses before anything is appended), then appends the
event, then renames the files into place, removes stale snapshots, and writes ``FROZEN.json``
last. A crash in between leaves a folder whose files and record disagree with each other or
with the code, which ``check`` reports naming the files; the next ``freeze`` rewrites the folder
and removes the temporaries an interrupted one left.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starter_contracts import StarterError
from starter_events.schemas import SNAPSHOT_NAME
from starter_ledger._freeze_record import Frozen, read_record
from starter_ledger._snapshots import FROZEN_FILE, digest, read_json, render, snapshot_paths
from starter_ledger.entry import decode_entry
from starter_ledger.errors import InputRejectedError
from starter_ledger.files import atomic_write

__all__ = ["SnapshotFolder", "discard", "stage", "write_folder"]

#: A staged file: the hidden temporary, and the snapshot file it becomes.
Staged = tuple[Path, Path]


@dataclass
class SnapshotFolder:
    """The snapshot folder as it is, read leniently (``freeze`` must repair any state)."""

    #: Snapshot files that are JSON (CRLF read as LF).
    files: dict[str, bytes] = field(default_factory=dict)
    #: Every file with a snapshot name, JSON or not.
    names: set[str] = field(default_factory=set)
    record: dict[str, Any] | None = None

    @classmethod
    def read(cls, folder: Path) -> SnapshotFolder:
        out = cls()
        if not folder.is_dir():
            return out
        for path in snapshot_paths(folder):
            if re.fullmatch(SNAPSHOT_NAME, path.name):
                out.names.add(path.name)
                with contextlib.suppress(InputRejectedError):
                    out.files[path.name] = read_json(path, "snapshot")[0]
        with contextlib.suppress(InputRejectedError):
            out.record = read_record(folder)
        return out

    def digests(self) -> dict[str, str]:
        return {name: digest(data) for name, data in self.files.items()}

    def changed(self, current: Mapping[str, bytes]) -> dict[str, bytes]:
        """The files of ``current`` that the folder does not hold byte for byte."""
        return {n: d for n, d in current.items() if self.files.get(n) != d}

    def stale(self, current: Collection[str], last: Frozen | None) -> list[str]:
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


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can open a folder
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def discard(staged: Iterable[Staged]) -> None:
    """Remove the staged temporaries (the freeze did not happen)."""
    for tmp, _ in staged:
        tmp.unlink(missing_ok=True)


def stage(folder: Path, files: Mapping[str, bytes]) -> list[Staged]:
    """Write each file to a hidden temporary beside its target, durably; nothing on failure."""
    staged: list[Staged] = []
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
        discard(staged)
        raise InputRejectedError(
            f"cannot write the snapshot folder {folder}: {e.strerror}",
            hint="make it writable, or point --snapshots (STARTER_SNAPSHOTS_DIR) elsewhere",
        ) from None
    return staged


def write_folder(
    folder: Path, staged: list[Staged], stale: list[str], record: dict[str, Any]
) -> tuple[list[str], list[str]]:
    """Move the staged files into place, remove the stale ones, then write FROZEN.json; gives
    the names written and removed."""
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
