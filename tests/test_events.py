"""The event catalog and the shared wire models: lookup, payload validation, round trips."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from conftest import ORIGIN, make_signer
from starter_contracts import Checkpoint, Ed25519PublicJWK, Envelope, StarterError
from starter_events import (
    EventError,
    GenesisPayload,
    NoteRecordedPayload,
    PayloadInvalidError,
    SignerAddedPayload,
    SignerRevokedPayload,
    UnknownEventTypeError,
    known_types,
    latest_version,
    lookup,
    register,
    validate_payload,
)
from starter_ledger.trust import make_proof_of_possession

KNOWN = (
    "artifact.published",
    "audit.recorded",
    "audit.waived",
    "changelog.added",
    "key.activated",
    "key.expired",
    "key.retired",
    "key.revoked",
    "key.staged",
    "ledger.genesis",
    "note.recorded",
    "release.tagged",
    "sbom.recorded",
    "schema.frozen",
    "signer.added",
    "signer.revoked",
    "version.bumped",
)
JWK = make_signer("events").public_jwk
#: Types with more than schema version 1, and their versions.
VERSIONS = {"audit.recorded": (1, 2)}


def test_known_types_lists_the_catalog() -> None:
    """Users can list exactly the seventeen event types of the catalog with their versions."""
    assert dict(known_types()) == {t: VERSIONS.get(t, (1,)) for t in KNOWN}
    assert list(known_types()) == sorted(KNOWN)


@pytest.mark.parametrize("type_", KNOWN)
def test_lookup_and_latest_version(type_: str) -> None:
    """Each known type resolves to its registered model at every version, newest last."""
    versions = VERSIONS.get(type_, (1,))
    assert latest_version(type_) == versions[-1]
    for version in versions:
        event_type = lookup(type_, version)
        assert event_type.type == type_
        assert event_type.schema_version == version
        assert issubclass(event_type.model, BaseModel)
        assert event_type.summary


def test_audit_recorded_v2_adds_excluded_and_reads_v1() -> None:
    """audit.recorded v2 carries ``excluded``; v1 refuses that member (a v1 reader rejects a v2
    payload instead of misreading it), and a v1 payload reads as v2 with nothing excluded."""
    v1 = _valid_payloads()["audit.recorded"]
    excluded = [{"package": "starter-contracts", "reason": "distribution marked as editable"}]
    v2 = validate_payload("audit.recorded", 2, {**v1, "excluded": excluded})
    assert v2.model_dump(mode="json") == {**v1, "excluded": excluded}
    with pytest.raises(PayloadInvalidError, match="excluded"):
        validate_payload("audit.recorded", 1, {**v1, "excluded": excluded})
    assert validate_payload("audit.recorded", 2, v1).model_dump(mode="json")["excluded"] == []


@pytest.mark.parametrize(
    ("call", "says"),
    [
        (lambda: lookup("no.such.type", 1), "unknown event type 'no.such.type'"),
        (lambda: lookup("note.recorded", 2), "has no schema version 2"),
        (lambda: latest_version("no.such.type"), "unknown event type 'no.such.type'"),
        (lambda: validate_payload("no.such", 1, {}), "unknown event type 'no.such'"),
    ],
    ids=["unknown-type", "unknown-version", "latest-of-unknown", "validate-unknown"],
)
def test_unknown_type_or_version_names_the_known_ones(call: Any, says: str) -> None:
    """An unknown type or version is refused (exit code 3) with a hint naming every known type."""
    with pytest.raises(UnknownEventTypeError) as info:
        call()
    err = info.value
    assert says in err.message
    assert err.exit_code == 3
    assert isinstance(err, EventError)
    assert isinstance(err, StarterError)
    assert err.hint is not None
    for type_ in KNOWN:
        versions = "/".join(f"v{v}" for v in VERSIONS.get(type_, (1,)))
        assert f"{type_} ({versions})" in err.hint


def test_registering_a_type_twice_is_refused() -> None:
    """A second model for an existing (type, version) is a programming error, caught at import."""

    class Duplicate(BaseModel):
        text: str

    with pytest.raises(RuntimeError, match="registered twice"):
        register("note.recorded", 1, "duplicate")(Duplicate)
    assert lookup("note.recorded", 1).model is NoteRecordedPayload


def _valid_payloads() -> dict[str, dict[str, Any]]:
    signer = make_signer("events")
    key = {
        "key_set": "default",
        "kid": signer.kid,
        "alg": "EdDSA",
        "jwk": JWK,
        "not_before": "2026-01-01T00:00:00.000Z",
        "not_after": "2026-03-01T00:00:00.000Z",
    }
    return {
        "ledger.genesis": {"origin": ORIGIN, "signer": JWK, "description": "d"},
        "note.recorded": {"text": "hello"},
        "signer.added": {
            "jwk": JWK,
            "proof_of_possession": make_proof_of_possession(ORIGIN, signer),
            "note": "n",
        },
        "signer.revoked": {"kid": signer.kid, "reason": "left"},
        "key.staged": {
            **key,
            "store": "file://.ledger/keys/tokens",
            "ref": signer.kid,
            "token_ttl_seconds": 3600,
        },
        "key.activated": key,
        "key.retired": {**key, "verify_until": "2026-03-01T01:00:00.000Z"},
        "key.revoked": {**key, "reason": "compromised", "compromised_since": None},
        "key.expired": key,
        "schema.frozen": {
            "contracts_version": "0.2.0",
            "snapshots": {"openapi.json": "sha256:" + "ab" * 32},
            "changes": [
                {
                    "kind": "field-removed",
                    "breaking": True,
                    "snapshot": "openapi.json",
                    "where": "/components/schemas/ReadyBody/properties/size",
                    "detail": "",
                }
            ],
            "breaking": True,
        },
        "version.bumped": {
            "old": "0.1.0",
            "new": "0.2.0-rc.1",
            "pep440": "0.2.0rc1",
            "part": "prerelease",
            "snapshots": {"openapi.json": "sha256:" + "cd" * 32},
            "breaking_since_release": False,
        },
        "changelog.added": {"category": "Fixed", "text": "the JWKS is served with its ETag"},
        "artifact.published": {
            "version": "0.2.0",
            "file": "starter_contracts-0.2.0-py3-none-any.whl",
            "sha256": "ef" * 32,
            "size": 12345,
            "repository": "http://127.0.0.1:8080/",
        },
        "release.tagged": {
            "version": "0.2.0",
            "tag": "v0.2.0",
            "commit": "0123456789abcdef0123456789abcdef01234567",
            "artifacts": [
                {"file": "starter_contracts-0.2.0-py3-none-any.whl", "sha256": "ef" * 32, "size": 1}
            ],
            "checkpoint": "example.com/test-ledger\n5\nAAAA\n",
        },
        "sbom.recorded": {
            "sha256": "01" * 32,
            "spec_version": "1.6",
            "components": 2,
            "subject": "environment",
            "diff": {
                "added": [{"name": "pydantic", "version": "2.11.0"}],
                "removed": [],
                "changed": [{"name": "rich", "old": "13.0.0", "new": "14.0.0"}],
            },
        },
        "audit.recorded": {
            "status": "inconclusive",
            "tool": "pip-audit 2.10.1",
            "source": "file",
            "report_sha256": "02" * 32,
            "dependencies": 40,
            "findings": [
                {
                    "package": "jinja2",
                    "version": "3.1.3",
                    "id": "GHSA-h75v-3vvj-5mfj",
                    "aliases": ["CVE-2024-34064"],
                    "fix_versions": ["3.1.4"],
                    "severity": "medium",
                }
            ],
            "skipped": [{"package": "starter-ledger", "reason": "not on PyPI"}],
        },
        "audit.waived": {
            "id": "GHSA-h75v-3vvj-5mfj",
            "package": "jinja2",
            "reason": "not reachable from our code",
            "expires": "2027-01-01T00:00:00.000Z",
        },
    }


@pytest.mark.parametrize("type_", KNOWN)
def test_valid_payload_validates(type_: str) -> None:
    """A valid payload of each type validates into its model with the same data."""
    payload = _valid_payloads()[type_]
    model = validate_payload(type_, 1, payload)
    assert isinstance(model, lookup(type_, 1).model)
    assert model.model_dump(mode="json") == payload


@pytest.mark.parametrize(
    ("type_", "change", "field"),
    [
        ("note.recorded", {"text": ""}, "text"),
        ("note.recorded", {"text": 5}, "text"),
        ("note.recorded", {"text": None}, "text"),
        ("note.recorded", {"colour": "red"}, "colour"),
        ("ledger.genesis", {"origin": "has space"}, "origin"),
        ("ledger.genesis", {"origin": "a+b"}, "origin"),
        ("ledger.genesis", {"signer": {**JWK, "x": "short"}}, "signer.x"),
        ("ledger.genesis", {"signer": {**JWK, "kty": "EC"}}, "signer.kty"),
        ("ledger.genesis", {"signer": {**JWK, "d": "secret"}}, "signer.d"),
        ("ledger.genesis", {"description": "x" * 1025}, "description"),
        ("signer.added", {"jwk": {**JWK, "d": "secret"}}, "jwk.d"),
        ("signer.added", {"proof_of_possession": "p" * 1025}, "proof_of_possession"),
        ("signer.revoked", {"kid": "not-a-thumbprint"}, "kid"),
        ("signer.revoked", {"reason": ""}, "reason"),
        ("schema.frozen", {"snapshots": {"../x.json": "sha256:" + "0" * 64}}, "snapshots"),
        ("schema.frozen", {"snapshots": {"a.json": "md5:0"}}, "snapshots"),
        ("schema.frozen", {"snapshots": {}}, "snapshots"),
        ("schema.frozen", {"breaking": False}, "<payload>"),
        ("schema.frozen", {"contracts_version": "1 0"}, "contracts_version"),
        ("version.bumped", {"new": "1.0"}, "new"),
        ("version.bumped", {"new": "01.0.0"}, "new"),
        ("changelog.added", {"category": "Misc"}, "category"),
        ("release.tagged", {"commit": "HEAD"}, "commit"),
        ("audit.recorded", {"status": "clean"}, "status"),
        ("audit.waived", {"expires": "tomorrow"}, "expires"),
        ("sbom.recorded", {"sha256": "x"}, "sha256"),
    ],
)
def test_invalid_payload_names_the_field(type_: str, change: dict[str, Any], field: str) -> None:
    """A payload that fails its schema is refused (exit code 3) naming the offending field."""
    payload = {**_valid_payloads()[type_], **change}
    with pytest.raises(PayloadInvalidError) as info:
        validate_payload(type_, 1, payload)
    assert f"{field}:" in info.value.message
    assert type_ in info.value.message
    assert info.value.exit_code == 3


@pytest.mark.parametrize(
    ("type_", "missing"),
    [
        ("note.recorded", "text"),
        ("ledger.genesis", "origin"),
        ("ledger.genesis", "signer"),
        ("signer.added", "jwk"),
        ("signer.added", "proof_of_possession"),
        ("signer.revoked", "kid"),
        ("signer.revoked", "reason"),
    ],
)
def test_missing_field_is_named(type_: str, missing: str) -> None:
    """A payload missing a required field is refused naming that field."""
    payload = dict(_valid_payloads()[type_])
    del payload[missing]
    with pytest.raises(PayloadInvalidError, match=rf"{missing}: Field required"):
        validate_payload(type_, 1, payload)


def test_non_object_payload_is_refused() -> None:
    """A payload that is not a JSON object is refused as a whole."""
    with pytest.raises(PayloadInvalidError, match="<payload>"):
        validate_payload("note.recorded", 1, ["text"])


def test_validation_is_strict() -> None:
    """Payload validation does not coerce types (bytes are not accepted as a string)."""
    with pytest.raises(PayloadInvalidError, match="text"):
        validate_payload("note.recorded", 1, {"text": b"bytes"})


# -- the public JWK --------------------------------------------------------------------------


def test_public_jwk_refuses_a_private_member() -> None:
    """A JWK holding the private member "d" can never be accepted into an event."""
    with pytest.raises(ValidationError) as info:
        Ed25519PublicJWK.model_validate({**JWK, "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"})
    assert [e["loc"] for e in info.value.errors()] == [("d",)]


@pytest.mark.parametrize(
    "change",
    [
        {"kty": "EC"},
        {"crv": "Ed448"},
        {"x": "A" * 42},
        {"x": "A" * 44},
        {"x": "A" * 42 + "B"},  # unused low bits set: not the canonical encoding of 32 bytes
        {"x": "A" * 42 + "="},
        {"x": "A" * 42 + "+"},
    ],
)
def test_public_jwk_refuses_malformed_members(change: dict[str, str]) -> None:
    """Only an OKP Ed25519 key with a canonical 32-byte x is a valid public JWK."""
    with pytest.raises(ValidationError):
        Ed25519PublicJWK.model_validate({**JWK, **change})


def test_public_jwk_accepts_real_keys() -> None:
    """Every real Ed25519 public key is accepted as a JWK."""
    for i in range(64):
        jwk = make_signer(f"key {i}").public_jwk
        assert Ed25519PublicJWK.model_validate(jwk).model_dump() == jwk


# -- round trips ------------------------------------------------------------------------------


def _models() -> list[Any]:
    payloads = _valid_payloads()
    return [
        pytest.param(GenesisPayload.model_validate(payloads["ledger.genesis"]), id="genesis"),
        pytest.param(NoteRecordedPayload(text="hello"), id="note"),
        pytest.param(SignerAddedPayload.model_validate(payloads["signer.added"]), id="added"),
        pytest.param(SignerRevokedPayload.model_validate(payloads["signer.revoked"]), id="revoked"),
        pytest.param(Ed25519PublicJWK.model_validate(JWK), id="jwk"),
        pytest.param(
            Envelope(
                origin=ORIGIN,
                seq=3,
                type="note.recorded",
                schema_version=1,
                occurred_at="2026-11-24T12:00:00.000Z",
                actor="tester",
                prev_root="A" * 43 + "=",
                payload={"text": "hello", "nested": [1, {"a": None}]},
            ),
            id="envelope",
        ),
        pytest.param(
            Checkpoint(
                origin=ORIGIN,
                size=7,
                root_hash="A" * 43 + "=",
                extensions=("starter-ledger-signers abc",),
            ),
            id="checkpoint",
        ),
    ]


@pytest.mark.parametrize("model", _models())
def test_model_round_trips(model: BaseModel) -> None:
    """Every model re-validates from its own dump into an equal value."""
    cls = type(model)
    assert cls.model_validate(model.model_dump()) == model
    assert cls.model_validate_json(model.model_dump_json()) == model


@pytest.mark.parametrize("model", _models())
def test_model_round_trips_through_parsed_json(model: BaseModel) -> None:
    """Every model re-validates from json.loads of its JSON, as a consumer of the wire sees it."""
    cls = type(model)
    assert cls.model_validate(json.loads(model.model_dump_json())) == model


@pytest.mark.parametrize("model", _models())
def test_models_are_immutable(model: BaseModel) -> None:
    """Values that cross a boundary cannot be changed after validation."""
    name = next(iter(type(model).model_fields))
    with pytest.raises(ValidationError):
        setattr(model, name, getattr(model, name))
