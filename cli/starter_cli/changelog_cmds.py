"""``starter-cli changelog ...``: changelog entries as ledger events, and CHANGELOG.md as their
projection.

For: ``changelog add`` (a signed ``changelog.added`` event), ``changelog write`` (regenerate the
file from the ledger, keeping its title and intro) and ``changelog check`` (exit 1 with a unified
diff when the file differs from the projection). Not for: what goes in the changelog
(``starter_events.releases``) or its format (``starter_ledger.changelog``).
"""

from __future__ import annotations

from pathlib import Path

import typer

from starter_cli._common import (
    ACTOR_OPTION,
    JSON_OPTION,
    KEY_OPTION,
    LEDGER_OPTION,
    default_key_url,
    notify_replicas,
    print_json,
    resolve_actor,
    safe,
)
from starter_cli.release_cmds import read_state, warn_problems

changelog_app = typer.Typer(
    help="Record changelog entries; write and check CHANGELOG.md from the ledger.",
    no_args_is_help=True,
)

FILE_OPTION = typer.Option(
    Path("CHANGELOG.md"), "--file", help="The changelog file.", show_default=True
)


def _category(text: str) -> str:
    from starter_events.release import CHANGELOG_CATEGORIES
    from starter_ledger.errors import InputRejectedError

    for category in CHANGELOG_CATEGORIES:
        if category.lower() == text.strip().lower():
            return category
    raise InputRejectedError(
        f"unknown changelog category {safe(text)!r}",
        hint=f"use one of {', '.join(CHANGELOG_CATEGORIES)}",
    )


def _entry_text(text: str) -> str:
    from starter_ledger.errors import InputRejectedError

    cleaned = " ".join(text.split())
    if not cleaned:
        raise InputRejectedError("the changelog text is empty", hint="say what changed")
    if not cleaned.isprintable():
        raise InputRejectedError(
            f"the changelog text {safe(cleaned[:80])!r} holds control characters",
            hint="use printable text on one line",
        )
    if len(cleaned) > 2000:
        raise InputRejectedError(
            f"the changelog text has {len(cleaned)} characters; at most 2000 are allowed"
        )
    return cleaned


@changelog_app.command()
def add(
    text: str = typer.Argument(..., help="One line for the changelog."),
    category: str = typer.Option(
        ...,
        "--category",
        "-c",
        help="Added, Changed, Deprecated, Removed, Fixed or Security.",
    ),
    ledger: str = LEDGER_OPTION,
    key: str | None = KEY_OPTION,
    actor: str | None = ACTOR_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Record one changelog entry (a signed changelog.added event) for the next release."""
    from starter_ledger.keystore import open_keystore
    from starter_ledger.ledger import Ledger

    payload = {"category": _category(category), "text": _entry_text(text)}
    who = resolve_actor(actor)
    with notify_replicas(Ledger.open(ledger)) as led:
        signer = open_keystore(key or default_key_url(ledger)).load()
        result = led.append("changelog.added", payload, signer, who)
    if json_out:
        print_json({**payload, "seq": result.first_seq})
        return
    typer.echo(
        f"recorded {payload['category']}: {payload['text']} (ledger entry {result.first_seq})"
    )


@changelog_app.command()
def write(file: Path = FILE_OPTION, ledger: str = LEDGER_OPTION) -> None:
    """Regenerate the changelog file from the ledger (its title and intro are kept)."""
    from starter_ledger.changelog import write as run_write

    state = read_state(ledger)
    warn_problems(state)
    changed = run_write(file, state)
    typer.echo(f"updated {file}" if changed else f"{file} is up to date")


@changelog_app.command()
def check(file: Path = FILE_OPTION, ledger: str = LEDGER_OPTION) -> None:
    """Fail (exit 1, with a unified diff) when the changelog file differs from the ledger."""
    from starter_ledger.changelog import check as run_check

    state = read_state(ledger)
    warn_problems(state)
    diff = run_check(file, state)
    if not diff:
        typer.echo(f"ok: {file} matches the ledger")
        return
    typer.echo(f"FAILED: {file} differs from the ledger's changelog projection")
    typer.echo(diff, nl=False)
    typer.echo("hint: run 'starter-cli changelog write' and commit the file", err=True)
    raise typer.Exit(1)
