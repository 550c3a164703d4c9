"""Files that are never half-written.

For: ``atomic_write``, which writes to a temporary file beside the target, fsyncs it and renames it
over the target, so a reader sees the old file or the new one, never a torn one (exports, saved
checkpoints). An ``OSError`` becomes an ``InputRejectedError`` naming the path. Not for: the ledger
database, whose durability is SQLite's.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from starter_ledger.errors import InputRejectedError


@contextlib.contextmanager
def atomic_write(path: Path, what: str = "file") -> Iterator[IO[bytes]]:
    """Yield a binary file; on a clean exit it replaces ``path`` durably, else it vanishes."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise InputRejectedError(f"cannot write {what} {path}: {e.strerror}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
