"""``starter-cli keys ...``: rotate, tick, revoke and inspect the token-signing keys; publish the
JWKS; verify receipts; issue a test token.

For: the command-line surface over ``starter_ledger.keyops``, ``jwks``, ``receipts`` and
``tokens``. Every change is one ledger append and leaves a signed receipt file. Errors propagate to
the one boundary in ``app.main``. Not for: key rules (``starter_events.keyring``).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from starter_cli._common import (
    ACTOR_OPTION,
    JSON_OPTION,
    KEY_OPTION,
    LEDGER_OPTION,
    default_key_url,
    notify_replicas,
    print_json,
    read_text_file,
    resolve_actor,
    safe,
    write_atomically,
)

if TYPE_CHECKING:
    from starter_ledger.keyops import KeyAction, KeyManager, KeyPolicy
    from starter_ledger.ledger import Ledger

app = typer.Typer(
    help="Rotate, schedule and revoke the token-signing keys; publish the JWKS.",
    no_args_is_help=True,
)
receipt_app = typer.Typer(help="Verify key-change receipts offline.", no_args_is_help=True)
app.add_typer(receipt_app, name="receipt")

STORE_OPTION = typer.Option(
    None,
    "--store",
    envvar="STARTER_KEY_STORE_URL",
    help="Token key store URL: file://DIR (default keys/tokens beside the ledger), "
    "vault-transit://, vault-kv://, aws-kms://, aws-secretsmanager://, azure-keyvault://.",
)
KEY_SET_OPTION = typer.Option(
    "default", "--key-set", help="Key set name (at most one active key per set)."
)
RECEIPTS_OPTION = typer.Option(
    None,
    "--receipts",
    envvar="STARTER_RECEIPTS_DIR",
    help="Folder for receipt files (default: receipts/ beside the ledger).",
)
CACHE_OPTION = typer.Option(
    None,
    "--cache-lifetime",
    envvar="STARTER_JWKS_MAX_AGE",
    help="How long clients cache the JWKS (e.g. 3600, 1h): the least lead time of a staged key.",
)
WARN_OPTION = typer.Option(
    None,
    "--warn-within",
    envvar="STARTER_KEY_WARN_WITHIN",
    help="Warn when the active key expires within this (e.g. 14d) and no key is staged.",
)


def parse_duration(text: str, what: str) -> dt.timedelta:
    """``90d``, ``12h``, ``30m``, ``45s`` or plain seconds (the contracts' duration form)."""
    from starter_contracts.defaults import parse_seconds
    from starter_ledger.errors import InputRejectedError

    seconds = parse_seconds(text)
    if not seconds:
        raise InputRejectedError(
            f"{what} {safe(text)!r} is not a positive duration", hint="use e.g. 3600, 1h, 90d"
        )
    return dt.timedelta(seconds=seconds)


def parse_time(text: str, what: str) -> dt.datetime:
    """An RFC 3339 time with a zone (``Z`` or an offset)."""
    from starter_ledger.errors import InputRejectedError

    try:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InputRejectedError(
            f"{what} {safe(text)!r} is not an RFC 3339 time with a zone",
            hint="use e.g. 2026-12-01T09:00:00Z",
        )
    return moment.astimezone(dt.UTC)


def _clock() -> Any:
    """The system clock, or the fixed time in STARTER_NOW (for rehearsing a schedule)."""
    from starter_ledger.clock import FixedClock, SystemClock

    fixed = os.environ.get("STARTER_NOW")
    return FixedClock(parse_time(fixed, "STARTER_NOW")) if fixed else SystemClock()


def _beside_ledger(ledger_url: str, name: str) -> Path:
    if ledger_url.startswith("sqlite:///"):
        return Path(ledger_url[len("sqlite:///") :].split("?", 1)[0]).parent / name
    return Path(".ledger") / name


def _policy(
    cache_lifetime: str | None = None,
    key_lifetime: str | None = None,
    token_ttl: str | None = None,
    warn_within: str | None = None,
) -> KeyPolicy:
    from starter_ledger.keyops import KeyPolicy

    base = KeyPolicy()
    return KeyPolicy(
        cache_lifetime=parse_duration(cache_lifetime, "--cache-lifetime")
        if cache_lifetime
        else base.cache_lifetime,
        key_lifetime=parse_duration(key_lifetime, "--key-lifetime")
        if key_lifetime
        else base.key_lifetime,
        token_ttl=parse_duration(token_ttl, "--token-ttl") if token_ttl else base.token_ttl,
        warn_within=parse_duration(warn_within, "--warn-within")
        if warn_within
        else base.warn_within,
    )


def _manager(ledger: Ledger, policy: KeyPolicy | None = None) -> KeyManager:
    from starter_ledger.keyops import KeyManager

    return KeyManager(ledger, clock=_clock(), policy=policy)


def _open(url: str) -> Ledger:
    from starter_ledger.ledger import Ledger

    return notify_replicas(Ledger.open(url, clock=_clock()))


def _report(action: KeyAction, receipts: Path | None, ledger_url: str, json_out: bool) -> None:
    """Write the receipt file and print what changed."""
    path = None
    if action.receipt is not None and action.result is not None:
        from starter_ledger.errors import InputRejectedError

        folder = receipts or _beside_ledger(ledger_url, "receipts")
        path = folder / f"receipt-{action.result.first_seq:08d}-{action.action}.jws"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            write_atomically(path, (action.receipt + "\n").encode("ascii"))
        except (OSError, InputRejectedError) as e:
            import sys

            sys.stdout.write(action.receipt + "\n")  # the only copy: the caller must keep it
            raise InputRejectedError(
                f"the change is recorded (ledger entries {action.result.first_seq}.."
                f"{action.result.size - 1}) but its receipt could not be written to {path}: {e}",
                hint="fix the folder (--receipts) and save the receipt printed on stdout",
            ) from None
    if json_out:
        print_json(
            {
                "action": action.action,
                "changed": action.changed,
                "steps": [{"type": s.type, "kid": s.kid} for s in action.steps],
                "first_seq": action.result.first_seq if action.result else None,
                "size": action.result.size if action.result else None,
                "jwks_before": action.jwks_before,
                "jwks_after": action.jwks_after,
                "receipt": str(path) if path else None,
                "warnings": action.warnings,
            }
        )
    else:
        if not action.steps:
            typer.echo("nothing due")
        for step in action.steps:
            typer.echo(f"{step.type:14s} {step.kid}")
        if path is not None:
            typer.echo(f"JWKS {action.jwks_before} -> {action.jwks_after}")
            typer.echo(f"receipt {path}")
    for warning in action.warnings:
        typer.echo(f"warning: {warning}", err=True)


@app.command()
def rotate(
    ledger: str = LEDGER_OPTION,
    key: str | None = KEY_OPTION,
    store: str | None = STORE_OPTION,
    key_set: str = KEY_SET_OPTION,
    alg: str = typer.Option("EdDSA", "--alg", help="EdDSA (Ed25519) or ES256 (P-256)."),
    activate_at: str | None = typer.Option(
        None, "--activate-at", help="When the new key starts signing (RFC 3339)."
    ),
    activate_now: bool = typer.Option(
        False, "--activate-now", help="Emergency: activate at once, retiring the active key."
    ),
    cache_lifetime: str | None = CACHE_OPTION,
    key_lifetime: str | None = typer.Option(
        None, "--key-lifetime", help="How long the key signs once active (default 90d)."
    ),
    token_ttl: str | None = typer.Option(
        None, "--token-ttl", help="Longest token lifetime: how long a retired key verifies (1h)."
    ),
    receipts: Path | None = RECEIPTS_OPTION,
    actor: str | None = ACTOR_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Stage a new key, published now and activated once every JWKS cache has seen it.

    The activation time is at least the JWKS cache lifetime away; --activate-now skips that
    (clients with a cached JWKS reject the new key's tokens until they refetch).
    """
    from starter_ledger.keystore import open_keystore
    from starter_ledger.tokenkeys import open_token_keystore

    who = resolve_actor(actor)
    when = parse_time(activate_at, "--activate-at") if activate_at else None
    policy = _policy(cache_lifetime, key_lifetime, token_ttl)
    with _open(ledger) as led:
        signer = open_keystore(key or default_key_url(ledger)).load()
        default = f"file://{_beside_ledger(ledger, 'keys/tokens').resolve()}"
        keystore = open_token_keystore(store or default)
        try:
            action = _manager(led, policy).rotate(
                keystore,
                signer,
                who,
                key_set=key_set,
                alg=alg,
                activate_at=when,
                activate_now=activate_now,
            )
        finally:
            keystore.close()
    _report(action, receipts, ledger, json_out)


@app.command()
def tick(
    ledger: str = LEDGER_OPTION,
    key: str | None = KEY_OPTION,
    warn_within: str | None = WARN_OPTION,
    receipts: Path | None = RECEIPTS_OPTION,
    actor: str | None = ACTOR_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Apply every key transition due now (for cron or CI; running it twice changes nothing).

    Activates staged keys whose time has come (retiring the active one), retires keys past
    not_after, expires retired keys past verify_until; warns when no next key is staged.
    """
    from starter_ledger.keystore import open_keystore

    who = resolve_actor(actor)
    with _open(ledger) as led:
        manager = _manager(led, _policy(warn_within=warn_within))
        plan = manager.ring().plan(manager.clock, manager.policy.warn_within)
        signer = open_keystore(key or default_key_url(ledger)).load() if plan.steps else None
        if signer is None:
            from starter_ledger.keyops import KeyAction

            digest = _digest(manager)
            action = KeyAction("tick", [], None, digest, digest, warnings=plan.warnings)
        else:
            action = manager.tick(signer, who)
    _report(action, receipts, ledger, json_out)


def _digest(manager: KeyManager) -> str:
    from starter_ledger.jwks import jwks_digest

    return jwks_digest(manager.jwks())


@app.command()
def revoke(
    kid: str = typer.Argument(..., help="The kid of the key to revoke."),
    reason: str = typer.Option(..., "--reason", help="Why (recorded in the ledger)."),
    compromised_since: str | None = typer.Option(
        None, "--compromised-since", help="When the key is believed compromised (RFC 3339)."
    ),
    ledger: str = LEDGER_OPTION,
    key: str | None = KEY_OPTION,
    receipts: Path | None = RECEIPTS_OPTION,
    actor: str | None = ACTOR_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Revoke a key: it leaves the JWKS at once, whatever its state."""
    from starter_ledger.keystore import open_keystore

    who = resolve_actor(actor)
    since = parse_time(compromised_since, "--compromised-since") if compromised_since else None
    with _open(ledger) as led:
        signer = open_keystore(key or default_key_url(ledger)).load()
        action = _manager(led).revoke(kid, reason, signer, who, compromised_since=since)
    _report(action, receipts, ledger, json_out)


@app.command()
def status(
    ledger: str = LEDGER_OPTION,
    key_set: str | None = typer.Option(None, "--key-set", help="Only this key set."),
    warn_within: str | None = WARN_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Show every key, its state and window, and what is due next."""
    with _open(ledger) as led:
        manager = _manager(led, _policy(warn_within=warn_within))
        ring = manager.ring()
        now = manager.clock.now()
        plan = ring.plan(manager.clock, manager.policy.warn_within)
        nxt = ring.next_change(now)
    records = ring.records(key_set)
    due = [{"type": s.type, "kid": s.kid} for s in plan.steps]
    if json_out:
        print_json(
            {
                "keys": [
                    {
                        "kid": r.kid,
                        "key_set": r.key_set,
                        "alg": r.alg,
                        "state": str(r.state),
                        "not_before": r.not_before,
                        "not_after": r.not_after,
                        "verify_until": r.verify_until,
                        "reason": r.reason,
                        "store": r.store,
                        "ref": r.ref,
                    }
                    for r in records
                ],
                "due_now": due,
                "next_change": next_change_text(nxt),
                "warnings": plan.warnings,
            }
        )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("key set", "kid", "alg", "state", "not_before", "not_after", "verify_until")
    for r in records:
        table.add_row(
            r.key_set, r.kid, r.alg, str(r.state), r.not_before, r.not_after, r.verify_until or ""
        )
    Console(width=200).print(table)
    for item in due:
        typer.echo(f"due now: {item['type']} {item['kid']} (run 'starter-cli keys tick')")
    typer.echo(f"next scheduled change: {next_change_text(nxt) or 'none'}")
    for warning in plan.warnings:
        typer.echo(f"warning: {warning}", err=True)


def next_change_text(moment: dt.datetime | None) -> str | None:
    from starter_events.keyring import format_timestamp

    return format_timestamp(moment) if moment else None


@app.command()
def jwks(
    ledger: str = LEDGER_OPTION,
    digest: bool = typer.Option(False, "--digest", help="Print only its sha256 digest."),
) -> None:
    """Print the JWKS the ledger implies now (RFC 8785 bytes, exactly what is published)."""
    import sys

    from starter_ledger.jwks import jwks_digest

    with _open(ledger) as led:
        body = _manager(led).jwks()
    if digest:
        typer.echo(jwks_digest(body))
        return
    sys.stdout.buffer.write(body)
    sys.stdout.buffer.flush()


@app.command()
def publish(
    out: Path = typer.Option(..., "--out", help="Where to write the JWKS (atomically)."),
    ledger: str = LEDGER_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Write the JWKS as a static file (for nginx or a CDN), replacing it atomically."""
    from starter_ledger.jwks import jwks_digest

    with _open(ledger) as led:
        manager = _manager(led)
        body = manager.jwks()
        nxt = manager.ring().next_change(manager.clock.now())
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(out, body)
    if json_out:
        print_json(
            {"path": str(out), "digest": jwks_digest(body), "next_change": next_change_text(nxt)}
        )
        return
    when = next_change_text(nxt) or "none"
    typer.echo(f"wrote {out} ({jwks_digest(body)}); next scheduled change: {when}")


@receipt_app.command("verify")
def receipt_verify(
    file: Path = typer.Argument(..., help="A receipt file (.jws) written by rotate/revoke/tick."),
    trusted_kid: list[str] = typer.Option(
        [], "--trusted-kid", help="Pin: a ledger signer kid you trust (repeatable)."
    ),
    json_out: bool = JSON_OPTION,
) -> None:
    """Verify a receipt offline: its signature, the entries, their inclusion proofs and the
    signed checkpoint. Exit 0 when it verifies, 1 when it does not."""
    from starter_ledger.receipts import summary, verify_receipt

    text = read_text_file(file, "receipt file")
    check = verify_receipt(text.strip(), set(trusted_kid) if trusted_kid else None)
    if json_out:
        print_json(
            {
                "ok": check.ok,
                "signer_kid": check.signer_kid,
                "failure": check.failure,
                "receipt": check.document,
            }
        )
    elif check.ok:
        typer.echo(f"verified receipt {file}: {summary(check.document)}")
        typer.echo(f"signed by ledger signer {check.signer_kid}")
        if not trusted_kid:
            typer.echo("note: pin the signer with --trusted-kid to trust it", err=True)
    else:
        typer.echo(f"FAILED {file}: {safe(check.failure or 'invalid')}", err=True)
    raise typer.Exit(0 if check.ok else 1)


@app.command("sign-test")
def sign_test(
    ledger: str = LEDGER_OPTION,
    key_set: str = KEY_SET_OPTION,
    store: str | None = typer.Option(
        None, "--store", help="Override the key store URL recorded when the key was staged."
    ),
    ttl: str = typer.Option("300", "--ttl", help="Token lifetime (capped by the key's)."),
    subject: str = typer.Option("sign-test", "--subject"),
    audience: str = typer.Option("starter", "--audience"),
    json_out: bool = JSON_OPTION,
) -> None:
    """Issue a short-lived test JWT with the active key, from whichever store holds it."""
    from starter_ledger.errors import InputRejectedError, KeyStoreError
    from starter_ledger.tokenkeys import open_token_keystore
    from starter_ledger.tokens import issue_token

    with _open(ledger) as led:
        manager = _manager(led)
        record = manager.ring().active(key_set)
        origin = led.origin()
        now = manager.clock.now()
    if record is None:
        raise InputRejectedError(
            f"key set {key_set!r} has no active key",
            hint="run 'starter-cli keys rotate --activate-now', or 'keys tick' when one is due",
        )
    if (next_change_text(now) or "") >= record.not_after:
        raise InputRejectedError(
            f"the active key {record.kid} stopped signing at {record.not_after}",
            hint="run 'starter-cli keys tick' (and 'keys rotate' if no key is staged)",
        )
    lifetime = min(parse_duration(ttl, "--ttl"), dt.timedelta(seconds=record.token_ttl_seconds))
    keystore = open_token_keystore(store or record.store)
    try:
        signer = keystore.signer(record.ref)
        if signer.kid != record.kid:
            raise KeyStoreError(
                f"key {record.ref} in {keystore.url} is {signer.kid}, not the active {record.kid}"
            )
        token = issue_token(
            signer,
            issuer=origin,
            subject=subject,
            audience=audience,
            ttl=lifetime,
            now=manager.clock.now(),
        )
    finally:
        keystore.close()
    if json_out:
        print_json({"token": token, "kid": record.kid, "alg": record.alg, "issuer": origin})
        return
    typer.echo(token)
