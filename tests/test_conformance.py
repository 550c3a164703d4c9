"""Conformance with the published standards: RFC 9162 proofs, RFC 8785, RFC 8037, C2SP notes.

Vectors come from ../shared/vectors (transparency-dev Merkle cases, cyberphone JCS cases) and from
tests/data (RFC 8037 Appendix A, the Go sumdb/note examples, the C2SP tlog-checkpoint example).
A missing or empty vector folder is a failure, never a skip.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from jwcrypto import jwk as jwc_jwk
from jwcrypto import jws as jwc_jws
from jwcrypto.common import JWException

from conftest import DATA, ORIGIN, VECTORS, make_signer
from starter_contracts import ENTRY_MEDIA_TYPE, Envelope
from starter_ledger import Ed25519Signer, Ledger, MemoryStore
from starter_ledger.clock import FixedClock
from starter_ledger.encoding import b64_encode, b64url_decode, b64url_encode
from starter_ledger.entry import decode_entry, encode_entry
from starter_ledger.errors import FormatError, ProofError
from starter_ledger.jcs import canonicalize
from starter_ledger.jws import parse_compact
from starter_ledger.keys import Verifier, public_key_bytes, thumbprint
from starter_ledger.merkle import EMPTY_ROOT, verify_consistency, verify_inclusion
from starter_ledger.note import (
    key_id,
    parse_checkpoint,
    parse_note,
    sign_note,
    verifier_key,
)

MERKLE = VECTORS / "merkle"
JCS = VECTORS / "jcs"


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


# -- RFC 9162 Merkle proof vectors ----------------------------------------------------------

_MERKLE_FILES = sorted([*MERKLE.glob("inclusion/**/*.json"), *MERKLE.glob("consistency/**/*.json")])
# An empty list would make pytest skip the parametrised test; a sentinel makes it fail instead.
_MERKLE_PARAMS = [pytest.param(p, id=p.relative_to(MERKLE).as_posix()) for p in _MERKLE_FILES] or [
    pytest.param(None, id="no-merkle-vectors-found")
]


def test_merkle_vector_folders_are_present() -> None:
    """The Merkle conformance vectors must be there: a CI without them proves nothing."""
    assert MERKLE.is_dir(), f"missing conformance vectors folder {MERKLE}"
    inclusion = list(MERKLE.glob("inclusion/**/*.json"))
    consistency = list(MERKLE.glob("consistency/**/*.json"))
    assert inclusion, f"no inclusion vectors under {MERKLE / 'inclusion'}"
    assert consistency, f"no consistency vectors under {MERKLE / 'consistency'}"
    accepted = [p for p in [*inclusion, *consistency] if not _load(p)["wantErr"]]
    assert accepted, "the vectors hold no happy-path case"


@pytest.mark.parametrize("path", _MERKLE_PARAMS)
def test_merkle_vector(path: Path | None) -> None:
    """Proof verification accepts exactly the proofs RFC 9162 accepts and rejects all others."""
    assert path is not None, f"no Merkle vectors found under {MERKLE}"
    case = _load(path)
    proof = [_b64(h) for h in case["proof"] or []]
    if "leafIdx" in case:

        def check() -> None:
            verify_inclusion(
                _b64(case["leafHash"]),
                case["leafIdx"],
                case["treeSize"],
                proof,
                _b64(case["root"]),
            )

    else:

        def check() -> None:
            verify_consistency(
                case["size1"], case["size2"], proof, _b64(case["root1"]), _b64(case["root2"])
            )

    if case["wantErr"]:
        with pytest.raises(ProofError):
            check()
    else:
        check()


# -- RFC 8785 JCS vectors ----------------------------------------------------------------------

_JCS_FILES = sorted((JCS / "input").glob("*.json"))
_JCS_PARAMS = [pytest.param(p, id=p.stem) for p in _JCS_FILES] or [
    pytest.param(None, id="no-jcs-vectors-found")
]


def test_jcs_vector_folder_is_present() -> None:
    """The JCS conformance vectors must be there, each input with its expected output."""
    assert _JCS_FILES, f"no JCS vectors under {JCS / 'input'}"
    for p in _JCS_FILES:
        assert (JCS / "output" / p.name).is_file(), f"{p.name} has no expected output"


@pytest.mark.parametrize("path", _JCS_PARAMS)
def test_jcs_vector(path: Path | None) -> None:
    """Everything hashed or signed is canonicalised to exactly the RFC 8785 bytes."""
    assert path is not None, f"no JCS vectors found under {JCS / 'input'}"
    expected = (JCS / "output" / path.name).read_bytes()
    hex_file = JCS / "outhex" / f"{path.stem}.txt"
    if hex_file.exists():  # the vectors' own hex rendering must agree with output/
        assert bytes.fromhex(hex_file.read_text()) == expected
    assert canonicalize(json.loads(path.read_bytes())) == expected


# -- RFC 8037 Appendix A -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def rfc8037() -> dict[str, Any]:
    return _load(DATA / "rfc8037.json")


def test_rfc8037_thumbprint(rfc8037: dict[str, Any]) -> None:
    """A signer's kid is the RFC 7638 thumbprint other JOSE tools compute for the same key."""
    assert canonicalize(rfc8037["public_jwk"]) == rfc8037["thumbprint_input"].encode()
    assert thumbprint(rfc8037["public_jwk"]) == rfc8037["thumbprint"]
    assert b64url_decode(rfc8037["thumbprint"]).hex() == rfc8037["thumbprint_sha256_hex"]


def test_rfc8037_signer_from_seed(rfc8037: dict[str, Any]) -> None:
    """A key loaded from an RFC 8037 private seed has the published public JWK and kid."""
    signer = Ed25519Signer(b64url_decode(rfc8037["private_jwk"]["d"]))
    assert signer.public_jwk == rfc8037["public_jwk"]
    assert signer.kid == rfc8037["thumbprint"]
    assert public_key_bytes(signer.public_jwk).hex() == rfc8037["public_key_hex"]


def test_rfc8037_signature_is_reproduced(rfc8037: dict[str, Any]) -> None:
    """Signing the RFC's signing input yields the RFC's signature byte for byte (RFC 8032)."""
    signer = Ed25519Signer(b64url_decode(rfc8037["private_jwk"]["d"]))
    signing_input = rfc8037["jws_signing_input"]
    assert signing_input == (
        b64url_encode(rfc8037["jws_protected_header"].encode())
        + "."
        + b64url_encode(rfc8037["jws_payload"].encode())
    )
    signature = signer.sign(signing_input.encode("ascii"))
    assert b64url_encode(signature) == rfc8037["jws_signature_b64u"]
    assert f"{signing_input}.{b64url_encode(signature)}" == rfc8037["jws_compact"]


def test_rfc8037_signature_verifies(rfc8037: dict[str, Any]) -> None:
    """Our verifier accepts the RFC's JWS signature and rejects it over altered input."""
    verifier = Verifier(public_key_bytes(rfc8037["public_jwk"]))
    header_b64, payload_b64, sig_b64 = rfc8037["jws_compact"].split(".")
    signature = b64url_decode(sig_b64)
    assert verifier.kid == rfc8037["thumbprint"]
    assert verifier.verify(f"{header_b64}.{payload_b64}".encode(), signature)
    assert not verifier.verify(f"{header_b64}.{payload_b64}x".encode(), signature)


def test_rfc8037_jws_lacks_the_ledger_header_profile(rfc8037: dict[str, Any]) -> None:
    """Ledger entries demand alg, kid and typ; the RFC's bare {"alg":"EdDSA"} JWS is refused."""
    with pytest.raises(FormatError, match="alg, kid and typ"):
        parse_compact(rfc8037["jws_compact"], ENTRY_MEDIA_TYPE)


# -- C2SP signed notes (Go sumdb/note examples) -------------------------------------------------


@pytest.fixture(scope="module")
def signed_note() -> dict[str, Any]:
    return _load(DATA / "signed_note.json")


def _verifier_public_key(vkey: str) -> bytes:
    """The raw Ed25519 key of a ``name+hash+base64(0x01 || key)`` verifier key string."""
    _name, _hash, blob = vkey.split("+", 2)
    raw = _b64(blob)
    assert raw[0] == 0x01
    return raw[1:]


def _signer_from_private_key(skey: str) -> tuple[str, Ed25519Signer]:
    """Name and key of ``PRIVATE+KEY+name+hash+base64(0x01 || seed)`` (the base64 may hold '+')."""
    private, key, name, hash_hex, blob = skey.split("+", 4)
    assert (private, key) == ("PRIVATE", "KEY")
    raw = _b64(blob)
    assert raw[0] == 0x01
    assert len(raw) == 33
    signer = Ed25519Signer(raw[1:])
    assert key_id(name, public_key_bytes(signer.public_jwk)).hex() == hash_hex
    return name, signer


def test_note_key_id(signed_note: dict[str, Any]) -> None:
    """Checkpoint key IDs are the C2SP signed-note key hashes other note tools compute."""
    pub = bytes.fromhex(signed_note["public_key_hex"])
    assert key_id(signed_note["key_name"], pub).hex() == signed_note["key_hash_hex"]
    second = signed_note["second_key"]
    pub2 = _verifier_public_key(second["verifier_key"])
    assert key_id(second["key_name"], pub2).hex() == second["key_hash_hex"]


def test_note_verifier_key(signed_note: dict[str, Any]) -> None:
    """The verifier key string we publish is the one Go's note.NewVerifier accepts."""
    pub = bytes.fromhex(signed_note["public_key_hex"])
    assert verifier_key(signed_note["key_name"], pub) == signed_note["verifier_key"]
    second = signed_note["second_key"]
    pub2 = _verifier_public_key(second["verifier_key"])
    assert verifier_key(second["key_name"], pub2) == second["verifier_key"]


def test_note_signing_reproduces_published_note(signed_note: dict[str, Any]) -> None:
    """Signing the published text with the published key yields the published note exactly."""
    name, signer = _signer_from_private_key(signed_note["signer_key"])
    assert name == signed_note["key_name"]
    assert public_key_bytes(signer.public_jwk).hex() == signed_note["public_key_hex"]
    assert sign_note(signed_note["note_text"], name, signer) == signed_note["signed_note"]


def test_note_published_note_verifies(signed_note: dict[str, Any]) -> None:
    """A published signed note parses into its text and signature and verifies under its key."""
    pub = bytes.fromhex(signed_note["public_key_hex"])
    parsed = parse_note(signed_note["signed_note"])
    assert parsed.text == signed_note["note_text"]
    assert len(parsed.signatures) == 1
    sig = parsed.signatures[0]
    assert sig.name == signed_note["key_name"]
    assert sig.key_id.hex() == signed_note["signature_key_id_hex"]
    assert sig.signature.hex() == signed_note["signature_ed25519_hex"]
    assert parsed.verify(signed_note["key_name"], pub)
    assert not parsed.verify("SomeoneElse", pub)
    other = public_key_bytes(make_signer("other").public_jwk)
    assert not parsed.verify(signed_note["key_name"], other)
    tampered = parse_note(signed_note["signed_note"].replace("cryptography", "cryptographY"))
    assert not tampered.verify(signed_note["key_name"], pub)


def test_note_doubly_signed_note_verifies_for_each_key(signed_note: dict[str, Any]) -> None:
    """A note cosigned by several keys verifies for each one, ignoring the others' lines."""
    parsed = parse_note(signed_note["doubly_signed_note"])
    assert parsed.text == signed_note["note_text"]
    assert [s.name for s in parsed.signatures] == ["PeterNeumann", "EnochRoot"]
    assert parsed.verify("PeterNeumann", bytes.fromhex(signed_note["public_key_hex"]))
    second = signed_note["second_key"]
    assert parsed.verify("EnochRoot", _verifier_public_key(second["verifier_key"]))


def _malformed_cases() -> list[Any]:
    cases = _load(DATA / "signed_note.json")["malformed_notes_from_note_test_go"]["cases"]
    return [pytest.param(c["msg"], id=c["desc"]) for c in cases]


@pytest.mark.parametrize("msg", _malformed_cases())
def test_note_malformed_is_rejected(msg: str) -> None:
    """Every note Go's note.Open rejects as malformed is refused by parse_note (all are syntax)."""
    with pytest.raises(FormatError):
        parse_note(msg)


def test_note_invalid_utf8_is_rejected(signed_note: dict[str, Any]) -> None:
    """Go's invalid-UTF-8 malformed case (not storable in JSON) is refused as bytes."""
    note = (
        b"\xff" + signed_note["note_text"].encode() + b"\n" + signed_note["signature_line"].encode()
    )
    with pytest.raises(FormatError, match="UTF-8"):
        parse_note(note)


def test_note_names_with_space_or_plus_are_refused(signed_note: dict[str, Any]) -> None:
    """A key name holding a space or '+' cannot sign a note (C2SP key-name rule)."""
    _name, signer = _signer_from_private_key(signed_note["signer_key"])
    for bad in ("Bad Name", "bad+name", ""):
        with pytest.raises(FormatError):
            sign_note(signed_note["note_text"], bad, signer)
    with pytest.raises(FormatError, match="newline"):
        sign_note("no final newline", "name", signer)


# -- C2SP tlog-checkpoint -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tlog() -> dict[str, Any]:
    return _load(DATA / "tlog_checkpoint.json")


def test_checkpoint_example_parses(tlog: dict[str, Any]) -> None:
    """The spec's example checkpoint parses to its origin, size and root hash."""
    example = tlog["example"]
    cp = parse_checkpoint(example["note_text"])
    assert cp.origin == example["origin"]
    assert cp.size == example["tree_size"]
    assert cp.root_hash == example["root_hash_b64"]
    assert _b64(cp.root_hash).hex() == example["root_hash_hex"]
    assert cp.extensions == tuple(example["extension_lines"])


def test_checkpoint_example_signed_note_parses(tlog: dict[str, Any]) -> None:
    """The spec's signed example checkpoint parses as a signed note with its key ID."""
    example = tlog["example"]
    note = parse_note(example["signed_checkpoint"])
    assert note.text == example["note_text"]
    (sig,) = note.signatures
    assert sig.name == example["origin"]
    assert sig.key_id.hex() == example["signature_key_id_hex"]
    assert 4 + len(sig.signature) == example["signature_decoded_length"]
    assert parse_checkpoint(note.text).size == example["tree_size"]


def test_checkpoint_extensions_and_empty_tree_parse(tlog: dict[str, Any]) -> None:
    """Extension lines are kept in order and an empty tree has size 0."""
    example = tlog["example"]
    cp = parse_checkpoint(example["note_text"] + "ext one\next-two\n")
    assert cp.extensions == ("ext one", "ext-two")
    empty = parse_checkpoint(f"{ORIGIN}\n0\n{b64_encode(EMPTY_ROOT)}\n")
    assert empty.size == 0


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("example.com/behind-the-sofa\n020852163\nROOT\n", "leading zero"),
        ("example.com/behind-the-sofa\n00\nROOT\n", "leading zero on zero"),
        ("example.com/behind-the-sofa\n+20852163\nROOT\n", "sign"),
        ("example.com/behind-the-sofa\n 20852163\nROOT\n", "space"),
        ("example.com/behind-the-sofa\n\uff12\uff10\nROOT\n", "non-ASCII digits"),
        ("example.com/behind-the-sofa\n-1\nROOT\n", "negative"),
        ("example.com/behind-the-sofa\n20852163\n", "missing root line"),
        ("example.com/behind-the-sofa\n", "missing size and root lines"),
        ("", "empty"),
        ("example.com/behind-the-sofa\n20852163\nROOT", "no final newline"),
        ("example.com/behind-the-sofa\n20852163\nROOT\n\n", "empty extension line"),
        ("example.com/behind-the-sofa\n20852163\nROOT\next\n\nmore\n", "empty middle extension"),
        ("\n20852163\nROOT\n", "empty origin"),
        ("example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgI\n", "short root"),
        ("example.com/behind-the-sofa\n20852163\nnot base64!\n", "root not base64"),
    ],
)
def test_checkpoint_malformed_is_rejected(tlog: dict[str, Any], body: str, why: str) -> None:
    """A checkpoint body that breaks the tlog-checkpoint rules is refused, never half-parsed."""
    body = body.replace("ROOT", tlog["example"]["root_hash_b64"])
    with pytest.raises(FormatError):
        parse_checkpoint(body)


# -- JWS interoperability with jwcrypto ---------------------------------------------------------


@pytest.fixture
def interop_ledger(signer: Ed25519Signer, clock: FixedClock) -> Ledger:
    led = Ledger(MemoryStore(), clock=clock)
    led.init(ORIGIN, signer, "tester")
    led.append("note.recorded", {"text": "interop"}, signer, "tester")
    return led


def test_jwcrypto_verifies_ledger_entries(interop_ledger: Ledger, signer: Ed25519Signer) -> None:
    """Any RFC 7515 library (here jwcrypto) verifies ledger entries with the signer's public JWK."""
    key = jwc_jwk.JWK(**signer.public_jwk)
    for _seq, entry in interop_ledger.entries():
        token = jwc_jws.JWS()
        token.deserialize(entry.raw.decode("ascii"))
        token.verify(key)
        assert token.payload == entry.jws.payload
        header = token.jose_header
        assert header == {"alg": "EdDSA", "kid": signer.kid, "typ": ENTRY_MEDIA_TYPE}
        assert header["kid"] == thumbprint(signer.public_jwk) == key.thumbprint()


def test_jwcrypto_rejects_entries_under_another_key(interop_ledger: Ledger) -> None:
    """An entry does not verify under any key but its signer's, in an independent library."""
    other = jwc_jwk.JWK(**make_signer("other").public_jwk)
    token = jwc_jws.JWS()
    token.deserialize(interop_ledger.entry(1).raw.decode("ascii"))
    with pytest.raises(JWException):
        token.verify(other)


def test_jwcrypto_signed_entry_is_accepted(signer: Ed25519Signer) -> None:
    """A JWS made by jwcrypto over our canonical header and envelope passes our strict parser."""
    private = jwc_jwk.JWK(**signer.public_jwk, d=b64url_encode(signer.private_seed()))
    envelope = Envelope(
        origin=ORIGIN,
        seq=0,
        type="note.recorded",
        schema_version=1,
        occurred_at="2026-11-24T12:00:00.000Z",
        actor="tester",
        prev_root=b64_encode(EMPTY_ROOT),
        payload={"text": "made by jwcrypto"},
    )
    payload = canonicalize(envelope.model_dump(mode="json"))
    header = canonicalize({"alg": "EdDSA", "kid": signer.kid, "typ": ENTRY_MEDIA_TYPE})
    token = jwc_jws.JWS(payload)
    token.add_signature(private, None, header.decode())
    compact = token.serialize(compact=True)

    parsed = parse_compact(compact, ENTRY_MEDIA_TYPE)
    assert parsed.kid == signer.kid
    assert parsed.payload == payload
    assert Verifier(public_key_bytes(signer.public_jwk)).verify(
        parsed.signing_input, parsed.signature
    )
    assert decode_entry(compact.encode()).envelope == envelope
    # Ed25519 is deterministic, so both implementations produce the same entry bytes.
    assert compact.encode() == encode_entry(envelope, signer)
