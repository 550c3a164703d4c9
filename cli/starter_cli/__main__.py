"""``python -m starter_cli``: the same as the ``starter-cli`` console script."""

from starter_cli.app import main

main()
