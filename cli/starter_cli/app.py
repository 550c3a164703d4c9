"""The root ``starter-cli`` application and its single error boundary.

For: wiring command groups together and turning every ``StarterError`` into one ``error:`` line
(plus a ``hint:`` line) on stderr with the error's exit code; ``--debug`` shows the traceback.
Not for: command logic (``ledger_cmds``).
"""

from __future__ import annotations

import os
import re
import sys

import typer

from starter_cli import (
    changelog_cmds,
    contracts_cmds,
    keys_cmds,
    ledger_cmds,
    release_cmds,
    supply_cmds,
)

app = typer.Typer(
    name="starter-cli",
    help="Starter platform CLI: a signed, Merkle-verifiable audit-and-release ledger.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(ledger_cmds.app, name="ledger")
app.add_typer(keys_cmds.app, name="keys")
app.add_typer(contracts_cmds.app, name="contracts")
app.add_typer(release_cmds.release_app, name="release")
app.add_typer(changelog_cmds.changelog_app, name="changelog")
app.add_typer(supply_cmds.sbom_app, name="sbom")
app.add_typer(supply_cmds.audit_app, name="audit")


@app.callback()
def _root(
    debug: bool = typer.Option(
        False, "--debug", help="Show tracebacks for errors.", envvar="STARTER_DEBUG"
    ),
) -> None:
    """Starter platform CLI: a signed, Merkle-verifiable audit-and-release ledger."""
    if debug:
        os.environ["STARTER_DEBUG"] = "1"  # seen by main()'s error boundary


TRUTHY = ("1", "true", "yes", "on")

#: An RFC 7638 thumbprint (a kid): 43 base64url characters. One in 64 starts with "-".
_KID = re.compile(r"-[A-Za-z0-9_-]{42}")


def _kids_as_arguments(args: list[str]) -> list[str]:
    """A kid that starts with "-" would be read as an unknown option; no option of this CLI has
    that shape, so move such kids after a "--" (every command that takes a kid takes exactly one
    positional argument)."""
    if "--" in args:
        return args
    kids = [a for a in args if _KID.fullmatch(a)]
    if not kids:
        return args
    return [a for a in args if a not in kids] + ["--", *kids]


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the CLI, mapping ``StarterError`` to its exit code.

    Usage errors (exit 2), ``--help`` and explicit exits are handled by typer itself.
    """
    from starter_contracts.errors import StarterError

    args = _kids_as_arguments(sys.argv[1:] if argv is None else list(argv))
    debug = "--debug" in args or os.environ.get("STARTER_DEBUG", "").lower() in TRUTHY
    try:
        app(args=args, prog_name="starter-cli")
    except StarterError as e:
        if debug:
            import traceback

            traceback.print_exc()
        print(f"error: {e.message}", file=sys.stderr)
        if e.hint:
            print(f"hint: {e.hint}", file=sys.stderr)
        sys.exit(e.exit_code)
    except Exception as e:
        if debug:
            raise
        print(f"error: internal error (a bug): {type(e).__name__}", file=sys.stderr)
        print("hint: re-run with --debug and report the traceback", file=sys.stderr)
        sys.exit(70)
