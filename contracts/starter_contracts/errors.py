"""The base error of every Starter package.

For: one catchable type with a message that says what happened, where, and what to do next, and the
process exit code the CLI uses for it. Not for: expected outcomes such as a failed verification,
which are values in a report.
"""

from __future__ import annotations


class StarterError(Exception):
    """Base error: ``message`` says what happened and where, ``hint`` what to do next."""

    #: Process exit code the CLI returns for this class of error.
    exit_code: int = 70

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message
