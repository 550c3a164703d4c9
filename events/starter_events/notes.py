"""``note.recorded``: a free-text note from an operator or a test.

For: the payload model. Not for: anything with meaning to projections.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from starter_events._registry import register


@register("note.recorded", 1, "records a free-text note")
class NoteRecordedPayload(BaseModel):
    """Payload of ``note.recorded`` v1: ``{"text": "..."}``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str = Field(min_length=1)
