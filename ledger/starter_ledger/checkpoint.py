"""The ledger's checkpoints: a C2SP tlog-checkpoint with one extension line, as a signed note.

For: ``make_checkpoint`` and ``expected_body``. The body is ``origin``, ``size``, base64 ``root``
and one extension line ``starter-ledger-signers <kid> ...`` listing the signers authorised after
the last entry, sorted, so that a verifier that starts from a trusted checkpoint knows who may sign
the next entry. The note is signed (key name = origin) by the signer of entry ``size - 1``. Not
for: parsing (``note.parse_checkpoint``) or verification (``verify``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from starter_ledger.keys import Signer
from starter_ledger.note import checkpoint_text, sign_note

SIGNERS_EXTENSION = "starter-ledger-signers"


def signers_line(kids: Iterable[str]) -> str:
    """The extension line naming the authorised signers."""
    return _signers_line(frozenset(kids))


@functools.lru_cache(maxsize=64)
def _signers_line(kids: frozenset[str]) -> str:
    return " ".join([SIGNERS_EXTENSION, *sorted(kids)])


def expected_body(origin: str, size: int, root: bytes, kids: Iterable[str]) -> str:
    """The exact checkpoint text for a tree state."""
    return checkpoint_text(origin, size, root) + signers_line(kids) + "\n"


def make_checkpoint(
    origin: str, size: int, root: bytes, kids: Iterable[str], signer: Signer
) -> str:
    """The signed checkpoint note for a tree state."""
    return sign_note(expected_body(origin, size, root, kids), origin, signer)


def signers_from_extensions(extensions: Iterable[str]) -> list[str] | None:
    """The kids of the signers extension line, or None when the checkpoint has none."""
    for line in extensions:
        name, _, rest = line.partition(" ")
        if name == SIGNERS_EXTENSION:
            return rest.split(" ") if rest else []
    return None
