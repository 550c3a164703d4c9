"""``starter-cli``: the command line of the Starter platform.

For: the ``starter-cli`` console script (``app.main``). Commands import the ledger lazily, so
``starter-cli --help`` starts fast. Not for: library use; import ``starter_ledger`` instead.
"""

__all__ = ["main"]

from starter_cli.app import main
