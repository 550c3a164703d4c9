"""Shared CLI plumbing: configuration from options and environment, output, progress.

For: resolving the ledger URL, key URL, actor and payload limit (option > environment > default),
printing JSON for CI, and a progress bar on stderr for long work. Not for: command logic.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import typer

from starter_contracts import defaults

LedgerT = TypeVar("LedgerT")

#: Where the ledger lives unless --ledger or STARTER_LEDGER_URL says otherwise.
DEFAULT_LEDGER_URL = defaults.DEFAULT_LEDGER_URL

LEDGER_OPTION = typer.Option(
    DEFAULT_LEDGER_URL,
    "--ledger",
    envvar="STARTER_LEDGER_URL",
    help="Ledger URL: sqlite:///PATH (default .ledger/ledger.db) or memory://NAME.",
    show_default=True,
)
JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON on stdout.")
KEY_OPTION = typer.Option(
    None,
    "--key",
    envvar="STARTER_LEDGER_KEY",
    help="Signing key store URL (file://PATH). Default: keys/signer.pem beside the ledger file.",
)
ACTOR_OPTION = typer.Option(
    None, "--actor", envvar="STARTER_ACTOR", help="Who is acting (default: user@host)."
)


def default_key_url(ledger_url: str) -> str:
    """The key beside a SQLite ledger: <ledger folder>/keys/signer.pem."""
    if ledger_url.startswith("sqlite:///"):
        folder = Path(ledger_url[len("sqlite:///") :].split("?", 1)[0]).parent
        return f"file://{folder / 'keys' / 'signer.pem'}"
    return "file://.ledger/keys/signer.pem"


def resolve_actor(actor: str | None) -> str:
    """The actor to record: given, or user@host; refused when it could not be stored."""
    from starter_ledger.errors import InputRejectedError

    if actor is None:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "unknown"
        actor = f"{user}@{socket.gethostname()}"
    if not actor or len(actor) > 256 or "\n" in actor or "\r" in actor:
        raise InputRejectedError(
            f"actor {safe(actor)!r} is not allowed",
            hint="use 1-256 characters without line breaks (--actor or STARTER_ACTOR)",
        )
    return actor


def safe(text: str) -> str:
    """``text`` with control characters escaped, fit to print on a terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


def max_payload_bytes(value: int | None) -> int:
    if value is not None:
        return value
    env = os.environ.get("STARTER_MAX_PAYLOAD_BYTES")
    if env:
        try:
            parsed = int(env)
        except ValueError:
            raise typer.BadParameter(
                f"STARTER_MAX_PAYLOAD_BYTES={env!r} is not a whole number"
            ) from None
        if parsed < 1:
            raise typer.BadParameter("STARTER_MAX_PAYLOAD_BYTES must be at least 1")
        return parsed
    return 1 << 20


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=True) + "\n")


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and a rename: never half-written."""
    from starter_ledger.files import atomic_write

    with atomic_write(path) as f:
        f.write(data)


@contextmanager
def progress_bar(label: str, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar on stderr when it is a terminal; yields the update callback."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def read_text_file(path: Path, what: str) -> str:
    """A text file; CRLF line ends (a checkpoint committed through git on Windows) become LF."""
    from starter_ledger.errors import InputRejectedError

    try:
        return path.read_bytes().decode("utf-8").replace("\r\n", "\n")
    except FileNotFoundError:
        raise InputRejectedError(f"no {what} at {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputRejectedError(f"cannot read {what} {path}: {e}") from None


def notify_replicas(ledger: LedgerT) -> LedgerT:
    """With STARTER_REDIS_URL set, publish a notification after each append so that backend
    replicas refresh at once; a Redis failure is a warning (the append is durable already)."""
    url = os.environ.get("STARTER_REDIS_URL")
    if not url:
        return ledger
    from starter_ledger.encoding import b64_encode
    from starter_ledger.notify import NotifyError, RedisNotifier

    notifier: list[RedisNotifier] = []

    def hook(led: Any, result: Any) -> None:
        try:
            if not notifier:
                notifier.append(RedisNotifier(url))
            notifier[0].publish(led.origin(), result.size, b64_encode(result.root))
        except NotifyError as e:
            typer.echo(f"warning: {e.message}", err=True)
            if e.hint:
                typer.echo(f"hint: {e.hint}", err=True)

    ledger.on_append.append(hook)  # type: ignore[attr-defined]
    return ledger
