"""The registry of event types: ``(type, schema_version)`` to payload model.

For: ``register`` (used by each event module), ``lookup`` and ``validate_payload``. Not for: the
models themselves, which live one module per family.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from starter_events.errors import PayloadInvalidError, UnknownEventTypeError

_M = TypeVar("_M", bound=type[BaseModel])


@dataclass(frozen=True, slots=True)
class EventType:
    """One registered event type at one schema version."""

    type: str
    schema_version: int
    model: builtins.type[BaseModel]
    summary: str


_REGISTRY: dict[tuple[str, int], EventType] = {}
#: The newest schema version of each registered type (kept by ``register``; read per append).
_LATEST: dict[str, int] = {}


def register(type_: str, schema_version: int, summary: str) -> Callable[[_M], _M]:
    """Class decorator: register a payload model as ``type_`` at ``schema_version``."""

    def decorate(model: _M) -> _M:
        key = (type_, schema_version)
        if key in _REGISTRY:
            msg = f"event type {type_} v{schema_version} is registered twice"
            raise RuntimeError(msg)
        _REGISTRY[key] = EventType(type_, schema_version, model, summary)
        _LATEST[type_] = max(schema_version, _LATEST.get(type_, schema_version))
        return model

    return decorate


def known_types() -> Mapping[str, tuple[int, ...]]:
    """Every registered type with its schema versions, sorted."""
    out: dict[str, list[int]] = {}
    for type_, version in sorted(_REGISTRY):
        out.setdefault(type_, []).append(version)
    return {t: tuple(v) for t, v in out.items()}


def _known_list() -> str:
    return ", ".join(f"{t} (v{'/v'.join(map(str, vs))})" for t, vs in known_types().items())


def latest_version(type_: str) -> int:
    """The newest schema version of ``type_``; raises ``UnknownEventTypeError``."""
    latest = _LATEST.get(type_)
    if latest is None:
        raise UnknownEventTypeError(
            f"unknown event type {type_!r}",
            hint=f"known types: {_known_list()}",
        )
    return latest


def lookup(type_: str, schema_version: int) -> EventType:
    """The registered ``EventType``; raises ``UnknownEventTypeError`` naming the known ones."""
    found = _REGISTRY.get((type_, schema_version))
    if found is None:
        if type_ in known_types():
            raise UnknownEventTypeError(
                f"event type {type_!r} has no schema version {schema_version}",
                hint=f"known types: {_known_list()}",
            )
        raise UnknownEventTypeError(
            f"unknown event type {type_!r}", hint=f"known types: {_known_list()}"
        )
    return found


def validate_payload(type_: str, schema_version: int, payload: Any) -> BaseModel:
    """Validate ``payload`` (parsed JSON) against its type's model and return the model."""
    event_type = lookup(type_, schema_version)
    try:
        model: BaseModel = event_type.model.model_validate(payload, strict=True)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(map(str, err['loc'])) or '<payload>'}: {err['msg']}"
            for err in e.errors(include_url=False)
        )
        raise PayloadInvalidError(
            f"payload of {type_} v{schema_version} is invalid: {problems}",
            hint=f"fix the payload to match the {type_} v{schema_version} schema "
            "(docs/ledger-format.md, event catalog)",
        ) from None
    return model
