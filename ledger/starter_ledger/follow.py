"""A verified, live view of a ledger that advances by only the entries appended since.

For: readers that serve what the ledger implies (the backend's JWKS, checkpoint and proofs) and
must stay current while other processes append. ``Follower.advance()`` verifies the whole ledger
the first time (or, given a trusted checkpoint, only what follows it), then on each later call
reads, checks and applies only the new entries: every check ``ledger verify`` gives an entry
(canonical encoding, contiguous ``seq``, ``prev_root``, payload schema, signature by a key
authorised at that position, trust rules, key lifecycle, stored tree nodes, the stored checkpoint
at the new size). A ``View`` is published only after its whole batch verified, so a reader never
serves a state that failed a check. After a failure the follower keeps its last good view and,
on the next call, starts again from that view's checkpoint (consistency proof plus new entries),
so a passing storage fault heals and tampering keeps failing. Not for: writing; this module
never appends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starter_events import KeyRing
from starter_ledger._verify_replay import _Failed, _Replay, _report
from starter_ledger._verify_run import _run
from starter_ledger.encoding import b64_encode
from starter_ledger.errors import FormatError, LedgerError
from starter_ledger.verify import (
    Failure,
    VerifyReport,
    replay_from_checkpoint,
    replay_store,
)

__all__ = ["Follower", "View"]


@dataclass(frozen=True, slots=True)
class View:
    """One verified state of the ledger: what a reader may serve. Immutable."""

    size: int
    root: bytes
    #: The stored signed checkpoint note for ``size`` (C2SP signed note), verified.
    checkpoint: str
    origin: str
    #: The key states after ``size`` entries (a private copy).
    keys: KeyRing

    @property
    def root_hash(self) -> str:
        """The root, base64 as in checkpoints."""
        return b64_encode(self.root)


class Follower:
    """Keeps a verified ``View`` of a store and advances it incrementally; see the module
    docstring. Not thread-safe: call it from one thread (the store's)."""

    def __init__(
        self,
        store: Any,
        *,
        trusted_checkpoint: str | None = None,
        genesis_sha256: str | None = None,
        jobs: int | None = 1,
    ) -> None:
        self.store = store
        self._trusted = trusted_checkpoint
        self._genesis = genesis_sha256
        self._jobs = jobs
        self._replay: _Replay | None = None
        #: The newest verified state, or None before the first successful verification.
        self.view: View | None = None
        #: The failure of the last ``advance`` (None when it succeeded).
        self.failure: Failure | None = None

    def advance(self) -> bool:
        """Verify what is new and publish it as ``view``; True when the view changed.

        A failure is recorded in ``failure`` (and the view stays as it was), never raised."""
        if self._replay is None:
            report, replay = self._restart()
        else:
            report, replay = self._more(self._replay)
        if not report.ok:
            self._replay = None  # its state is past the last good view: start again from it
            self.failure = report.first_failure
            return False
        self.failure = None
        self._replay = replay
        before = self.view
        if before is not None and before.size == replay.frontier.size:
            return False
        self.view = View(
            size=replay.frontier.size,
            root=replay.frontier.root(),
            checkpoint=replay.last_checkpoint or "",
            origin=replay.signers.origin or "",
            keys=replay.keys.copy(),
        )
        return True

    def _restart(self) -> tuple[VerifyReport, _Replay]:
        pin = self.view.checkpoint if self.view is not None else self._trusted
        if pin is None:
            return replay_store(self.store, genesis_sha256=self._genesis, jobs=self._jobs)
        return replay_from_checkpoint(
            self.store, pin, genesis_sha256=self._genesis, jobs=self._jobs
        )

    def _more(self, replay: _Replay) -> tuple[VerifyReport, _Replay]:
        """Continue a successful replay with the entries appended since it ended."""
        old = replay.frontier.size
        url = self.store.url
        try:
            size = self.store.size()
        except LedgerError as e:
            return _report(replay, url, Failure(None, "storage", e.message)), replay
        if size < old:
            failure = Failure(
                size,
                "checkpoint-pin",
                f"the ledger has {size} entries, fewer than the {old} already verified: "
                "it was truncated",
            )
            return _report(replay, url, failure), replay
        if size == old:
            return _report(replay, url, None), replay
        replay.final_size = size
        replay.final_checked = False
        replay.pin = None
        # Stores without ``iter_rows`` feed checkpoints from this iterator; one with it gets a
        # fresh feed from ``_run``. Either way the first pass's (exhausted) one is not reused.
        replay.checkpoints = (c for c in self.store.iter_checkpoints(old + 1) if c[0] <= size)
        replay.next_cp = None
        try:
            _run(replay, self.store, old, self._jobs, None)
        except _Failed as f:
            return _report(replay, url, f.failure), replay
        except LedgerError as e:
            check = "entry-format" if isinstance(e, FormatError) else "storage"
            return _report(replay, url, Failure(replay.frontier.size, check, e.message)), replay
        return _report(replay, url, None, verified_from=old), replay
