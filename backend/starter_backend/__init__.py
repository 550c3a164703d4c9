"""Reserved for the Starter HTTP service (JWKS and ledger proofs from ledger state); empty so far.

For: the read-only HTTP layer over the ledger. It may import ``starter_ledger`` and
``starter_contracts``, never ``starter_cli`` (import-linter enforces both). Not for: writing to the
ledger.
"""

__all__: list[str] = []
