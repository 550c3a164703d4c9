"""The Starter HTTP service: JWKS and ledger proofs served from ledger state.

For: the FastAPI application (read-only over the ledger). It imports ``starter_ledger`` and
``starter_contracts``, never ``starter_cli``. Not for: writing to the ledger.
"""

__all__: list[str] = []
