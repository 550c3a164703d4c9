"""C2SP signed notes with Ed25519 signatures, and C2SP tlog-checkpoints carried in them.

For: producing and parsing a checkpoint (``origin``, ``size``, base64 root, one per line) signed as
a signed note: the text, a blank line, then ``— <name> <base64(key ID || signature)>`` lines, where
the key ID is the first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key). Not for: choosing
which key must have signed a checkpoint (that is the ledger's trust model, see
``starter_ledger.verify``).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

from pydantic import ValidationError

from starter_contracts import Checkpoint
from starter_ledger.encoding import b64_decode, b64_encode
from starter_ledger.errors import FormatError
from starter_ledger.keys import Signer, Verifier, public_key_bytes

#: Signature algorithm byte of Ed25519 in signed notes.
ED25519_ALG = 0x01
_DASH = "\u2014 "
#: A note larger than this is refused before parsing (checkpoints are a few hundred bytes).
MAX_NOTE_BYTES = 1 << 16


@functools.lru_cache(maxsize=256)
def key_id(name: str, public_key: bytes) -> bytes:
    """Signed-note key ID: first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key)."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519_ALG]) + public_key).digest()[:4]


def verifier_key(name: str, public_key: bytes) -> str:
    """The signed-note verifier key string ``<name>+<hex key ID>+<base64(0x01 || key)>``."""
    return (
        f"{name}+{key_id(name, public_key).hex()}+{b64_encode(bytes([ED25519_ALG]) + public_key)}"
    )


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line of a signed note."""

    name: str
    key_id: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class SignedNote:
    """A parsed signed note: its text (ending in a newline) and its signature lines."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def verify(self, name: str, public_key: bytes) -> bool:
        """True when ``name``'s key signed the note: at least one line by ``name`` with its key
        ID, and every such line verifies under ``public_key`` (lines of other keys are ignored).
        """
        kid = key_id(name, public_key)
        verifier = Verifier(public_key)
        message = self.text.encode()
        mine = [s for s in self.signatures if s.name == name and s.key_id == kid]
        return bool(mine) and all(verifier.verify(message, s.signature) for s in mine)

    def has_key(self, name: str, public_key: bytes) -> bool:
        """True when a signature line names ``name`` with this key's ID (signature unchecked)."""
        kid = key_id(name, public_key)
        return any(s.name == name and s.key_id == kid for s in self.signatures)


@functools.lru_cache(maxsize=256)
def _check_name(name: str) -> None:
    if not name or any(c.isspace() or c == "+" for c in name):
        raise FormatError(f"signed-note key name {name!r} must be non-empty, without spaces or '+'")


@functools.lru_cache(maxsize=256)
def _key_id_of(name: str, jwk: tuple[tuple[str, str], ...]) -> bytes:
    """The signed-note key ID of a public JWK (as sorted items) under ``name``, cached."""
    return key_id(name, public_key_bytes(dict(jwk)))


def sign_note(text: str, name: str, signer: Signer) -> str:
    """Sign ``text`` (which must end in a newline) as a signed note by key ``name``."""
    _check_name(name)
    if not text.endswith("\n"):
        raise FormatError("signed-note text must end with a newline")
    signature = signer.sign(text.encode())
    blob = b64_encode(_key_id_of(name, tuple(sorted(signer.public_jwk.items()))) + signature)
    return f"{text}\n{_DASH}{name} {blob}\n"


def parse_note(note: str | bytes) -> SignedNote:
    """Parse a signed note; refuses one without signatures or with a malformed line."""
    if isinstance(note, bytes):
        if len(note) > MAX_NOTE_BYTES:
            raise FormatError(f"signed note is larger than {MAX_NOTE_BYTES} bytes")
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError("signed note is not UTF-8") from None
    if len(note) > MAX_NOTE_BYTES or len(note.encode("utf-8", "replace")) > MAX_NOTE_BYTES:
        raise FormatError(f"signed note is larger than {MAX_NOTE_BYTES} bytes")
    if "\r" in note or any(ord(c) < 0x20 and c != "\n" for c in note):
        raise FormatError("signed note holds control characters")
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise FormatError("signed note needs its text, a blank line, then signature lines")
    text, sig_block = note[: split + 1], note[split + 2 :]
    signatures = []
    for line in sig_block[:-1].split("\n"):
        if not line.startswith(_DASH):
            raise FormatError(f"malformed signature line {line[:40]!r}")
        name, _, blob = line[len(_DASH) :].partition(" ")
        _check_name(name)
        raw = b64_decode(blob)
        if len(raw) < 5:
            raise FormatError("signature line is too short to hold a key ID and a signature")
        signatures.append(NoteSignature(name, raw[:4], raw[4:]))
    if not signatures:
        raise FormatError("signed note has no signatures")
    return SignedNote(text, tuple(signatures))


def checkpoint_text(origin: str, size: int, root: bytes) -> str:
    """The C2SP tlog-checkpoint body: origin, decimal size and base64 root, one per line."""
    return f"{origin}\n{size}\n{b64_encode(root)}\n"


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a tlog-checkpoint body (the text of a signed note)."""
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise FormatError("a checkpoint has an origin, a size and a root hash line")
    origin, size_line, root_line, *extensions = lines[:-1]
    if (
        not size_line.isascii()
        or not size_line.isdigit()
        or len(size_line) > 19
        or (len(size_line) > 1 and size_line.startswith("0"))
    ):
        raise FormatError(f"checkpoint size {size_line!r} is not a decimal without leading zeros")
    if any(not line for line in extensions):
        raise FormatError("checkpoint extension lines must be non-empty")
    if len(b64_decode(root_line)) != 32:
        raise FormatError("checkpoint root hash is not 32 bytes")
    try:
        return Checkpoint(
            origin=origin, size=int(size_line), root_hash=root_line, extensions=tuple(extensions)
        )
    except ValidationError as e:
        raise FormatError(f"checkpoint is invalid: {e.errors()[0]['msg']}") from None
