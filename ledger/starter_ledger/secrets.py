"""Refusing empty and placeholder secrets (tokens, passwords) before they are used.

For: ``require_secret``, which the remote key stores call on the credentials they read from the
environment, so that a forgotten ``changeme`` fails at once with a message naming the variable,
never the value. Not for: storing or logging secrets (nothing here keeps or prints them).
"""

from __future__ import annotations

from starter_ledger.errors import KeyStoreError

__all__ = ["PLACEHOLDERS", "require_secret"]

#: Values that are never a real secret (compared case-insensitively, without surrounding
#: whitespace, <>, quotes or braces).
PLACEHOLDERS = frozenset(
    {
        "changeme",
        "change-me",
        "change_me",
        "placeholder",
        "secret",
        "password",
        "token",
        "todo",
        "tbd",
        "xxx",
        "xxxx",
        "dummy",
        "example",
        "none",
        "null",
        "your-token",
        "your_token",
        "your-token-here",
        "insert-token-here",
        "s.xxxxxxxx",
    }
)


def require_secret(name: str, value: str | None) -> str:
    """``value`` if it looks like a real secret; otherwise a ``KeyStoreError`` naming ``name``."""
    if value is None or not value.strip():
        raise KeyStoreError(f"{name} is not set or empty", hint=f"export {name}=<the real secret>")
    bare = value.strip().strip("<>{}\"'").strip().lower()
    if bare in PLACEHOLDERS or set(bare) <= {"x", "*", ".", "-", "_"}:
        raise KeyStoreError(
            f"{name} holds a placeholder, not a secret", hint=f"set {name} to the real secret"
        )
    return value.strip()
