"""``starter-cli release gates|tag|allowed-signers|check|publish``: from green gates to a signed tag
and an upload, all checked against the ledger.

For: the command-line surface over ``starter_ledger.gates`` (``release gates``),
``starter_ledger.release_tag`` (``release tag``/``check``/``publish``) and
``starter_ledger.gitsign`` (``release allowed-signers``). Its commands join ``release_cmds``'s
``release`` group. A red gate or tag drift is exit 1 (``gates``, ``check``); ``release tag``
refusing on red gates is exit 3 with the ledger unchanged. Not for: bumps and the release list
(``release_cmds``) or the rules themselves (``gates``, ``release_tag``).
"""

from __future__ import annotations

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
    resolve_actor,
    safe,
)

if TYPE_CHECKING:
    from starter_ledger.gates import Gate

#: Merged into the ``release`` group by ``release_cmds`` (no group of its own).
release_tag_app = typer.Typer()

REPO_OPTION = typer.Option(Path("."), "--repo", help="The release's git clone.", show_default=True)
CONTRACTS_OPTION = typer.Option(
    None,
    "--contracts",
    help="The starter-contracts project (its pyproject.toml). Default: contracts/ in --repo.",
)
GATE_SNAPSHOTS_OPTION = typer.Option(
    None,
    "--snapshots",
    envvar="STARTER_SNAPSHOTS_DIR",
    help="Folder of the committed snapshots and FROZEN.json. Default: snapshots/ in --contracts.",
)
OUT_OPTION = typer.Option(
    Path("dist"), "--out", help="Folder the release wheel is built into.", show_default=True
)
PRINCIPAL_OPTION = typer.Option(
    "release@starter-ledger",
    "--principal",
    envvar="STARTER_RELEASE_PRINCIPAL",
    help="The tag signer's identity (tagger e-mail; first field of the allowed-signers line).",
    show_default=True,
)
SEVERITY_OPTION = typer.Option(
    "low",
    "--min-severity",
    envvar="STARTER_RELEASE_MIN_SEVERITY",
    help="Open audit findings at or above this block a release (low, medium, high, critical); "
    "a finding without a severity always blocks.",
    show_default=True,
)
WARN_WITHIN_OPTION = typer.Option(
    None,
    "--warn-within",
    envvar="STARTER_KEY_WARN_WITHIN",
    help="Keys are unhealthy when an active key expires within this (e.g. 14d) with no "
    "successor staged.",
)


def _gate_settings(warn_within: str | None) -> tuple[Any, Any]:
    from starter_cli.keys_cmds import _clock, _policy

    return _clock(), _policy(warn_within=warn_within).warn_within


def _print_gates(gates: list[Gate]) -> None:
    for g in gates:
        typer.echo(f"{'ok    ' if g.ok else 'FAILED'} {g.name:28s} {safe(g.detail)}")


@release_tag_app.command()
def gates(
    repo: Path = REPO_OPTION,
    contracts: Path | None = CONTRACTS_OPTION,
    snapshots: Path | None = GATE_SNAPSHOTS_OPTION,
    min_severity: str = SEVERITY_OPTION,
    warn_within: str | None = WARN_WITHIN_OPTION,
    ledger: str = LEDGER_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Show every release gate for the current version (exit 1 when any is red; for CI).

    The gates: version bumped and not released, ledger verify, contracts snapshots frozen,
    an SBOM and a conclusive audit after the bump, no open finding at or above --min-severity,
    healthy token-signing keys. Reads the ledger only; changes nothing."""
    from starter_ledger.gates import collect, evaluate, failed
    from starter_ledger.ledger import Ledger
    from starter_ledger.storage import open_store

    clock, within = _gate_settings(warn_within)
    now = clock.now()
    folder = snapshots or (contracts or repo / "contracts") / "snapshots"
    with Ledger(open_store(ledger, read_only=True)) as led:
        facts = collect(led, folder, now)
    result = evaluate(facts, now, min_severity=min_severity, warn_within=within)
    red = failed(result)
    if json_out:
        print_json(
            {
                "version": facts.state.current,
                "ok": not red,
                "gates": [g.to_dict() for g in result],
            }
        )
    else:
        typer.echo(f"release gates for {facts.state.current or '(no version bumped)'}")
        _print_gates(result)
    raise typer.Exit(1 if red else 0)


@release_tag_app.command()
def tag(
    repo: Path = REPO_OPTION,
    contracts: Path | None = CONTRACTS_OPTION,
    snapshots: Path | None = GATE_SNAPSHOTS_OPTION,
    out: Path = OUT_OPTION,
    principal: str = PRINCIPAL_OPTION,
    min_severity: str = SEVERITY_OPTION,
    warn_within: str | None = WARN_WITHIN_OPTION,
    ledger: str = LEDGER_OPTION,
    key: str | None = KEY_OPTION,
    actor: str | None = ACTOR_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Tag the current version: check every gate, build the wheel, record it, tag git.

    Refuses (exit 3, naming every red gate, ledger unchanged) unless all gates pass and the
    clone is clean. Builds the starter-contracts wheel with SOURCE_DATE_EPOCH = the commit's
    time, appends artifact.published and release.tagged, and creates the annotated tag vX.Y.Z
    whose message is the ledger checkpoint, SSH-signed when the ledger key is a file key
    (verify with 'git tag -v' and 'starter-cli release allowed-signers'). Run again after a
    crash: it only creates the missing tag."""
    from starter_ledger.keystore import open_keystore
    from starter_ledger.ledger import Ledger
    from starter_ledger.release_tag import signer_seed, tag_release

    who = resolve_actor(actor)
    clock, within = _gate_settings(warn_within)
    project = contracts or repo / "contracts"
    with notify_replicas(Ledger.open(ledger, clock=clock)) as led:
        signer = open_keystore(key or default_key_url(ledger)).load()
        outcome = tag_release(
            led,
            signer,
            who,
            repo,
            project,
            out_dir=out,
            principal=principal,
            now=clock.now(),
            min_severity=min_severity,
            warn_within=within,
            snapshots=snapshots,
            seed=signer_seed(signer),
        )
    if json_out:
        print_json(outcome.to_dict())
        return
    how = "signed" if outcome.signed else "unsigned (the ledger key is not a file key)"
    if outcome.resumed:
        typer.echo(
            f"release {outcome.version} was recorded at ledger entry {outcome.seq}; "
            f"created its missing tag {outcome.tag} ({how}) at {outcome.commit[:12]}"
        )
        return
    for a in outcome.artifacts:
        typer.echo(f"built {out / a['file']}  sha256:{a['sha256']}  {a['size']} bytes")
    typer.echo(
        f"tagged {outcome.tag} ({how}) at {outcome.commit[:12]}; release.tagged at ledger "
        f"entry {outcome.seq}"
    )
    typer.echo(f"push it: git push origin {outcome.tag}")


@release_tag_app.command("allowed-signers")
def allowed_signers_cmd(
    principal: str = PRINCIPAL_OPTION,
    ledger: str = LEDGER_OPTION,
    key: str | None = KEY_OPTION,
) -> None:
    """Print the git allowed-signers line that trusts the ledger key for release tags.

    Save it to a file and verify a tag: git -c gpg.ssh.allowedSignersFile=FILE tag -v vX.Y.Z.
    Only the public key is printed."""
    from starter_ledger.gitsign import allowed_signers
    from starter_ledger.keystore import open_keystore

    signer = open_keystore(key or default_key_url(ledger)).load()
    typer.echo(allowed_signers(principal, signer.public_jwk), nl=False)


@release_tag_app.command("check")
def check_release(
    repo: Path = REPO_OPTION, ledger: str = LEDGER_OPTION, json_out: bool = JSON_OPTION
) -> None:
    """Compare git's v* tags with the ledger's releases (exit 1 on drift).

    Drift: a tag the ledger does not record, a tag at another commit than recorded, a recorded
    release without its tag, or a tag whose message is not the recorded checkpoint."""
    from starter_ledger.ledger import Ledger
    from starter_ledger.release_tag import check_tags
    from starter_ledger.storage import open_store

    with Ledger(open_store(ledger, read_only=True)) as led:
        drift = check_tags(led, repo)
    if json_out:
        print_json({"ok": not drift, "drift": [d.to_dict() for d in drift]})
    elif not drift:
        typer.echo(f"ok: the v* tags of {repo} match the ledger's releases")
    else:
        typer.echo(f"FAILED: {len(drift)} tags drift from the ledger")
        for d in drift:
            typer.echo(f"{d.kind:14s} {safe(d.tag)}  {safe(d.detail)}")
    raise typer.Exit(1 if drift else 0)


@release_tag_app.command()
def publish(
    repository: str = typer.Option(
        ...,
        "--repository",
        help="The package index's upload URL (PEP 503 / twine), e.g. https://upload.pypi.org/legacy/.",
    ),
    version: str | None = typer.Option(
        None, "--version", help="The release to publish (default: the last one)."
    ),
    out: Path = OUT_OPTION,
    ledger: str = LEDGER_OPTION,
    key: str | None = KEY_OPTION,
    actor: str | None = ACTOR_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Upload a release's wheel after checking its SHA-256 against the ledger; record it.

    Credentials come from TWINE_USERNAME / TWINE_PASSWORD. The upload is recorded as a second
    artifact.published for the same file, with the repository URL set."""
    from starter_ledger.keystore import open_keystore
    from starter_ledger.ledger import Ledger
    from starter_ledger.release_tag import publish_release

    who = resolve_actor(actor)
    with notify_replicas(Ledger.open(ledger)) as led:
        signer = open_keystore(key or default_key_url(ledger)).load()
        result = publish_release(led, signer, who, repository, out, version=version)
    if json_out:
        print_json(result.to_dict())
        return
    typer.echo(
        f"published {result.file} (sha256:{result.sha256}) to {safe(result.repository)}; "
        f"recorded at ledger entry {result.seq}"
    )
