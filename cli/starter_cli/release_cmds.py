"""``starter-cli release ...``: version bumps, gates, tags, uploads and the release list, all from
the ledger.

For: the ``release`` group and the command-line surface over ``starter_ledger.versioning``
(``release bump``) and ``starter_events.releases`` (``release list``/``show``);
``release_tag_cmds`` adds ``gates``, ``tag``, ``allowed-signers``, ``check`` and ``publish`` to
the group, and ``changelog_cmds`` holds the changelog commands. Writers append through
``notify_replicas``; readers open the ledger read-only. Errors propagate to the
one boundary in ``app.main`` (bad input is exit 3 with the ledger unchanged). Not for: the
version rules (``versioning``) or what goes in a release (``releases``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

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
    from starter_events.releases import Release, ReleaseState

release_app = typer.Typer(
    help="Bump the version, gate, tag, publish and list releases, from the ledger alone.",
    no_args_is_help=True,
)

VERSION_FILE_OPTION = typer.Option(
    Path("contracts/starter_contracts/_version.py"),
    "--version-file",
    help="The starter-contracts version file (the one place the version is written).",
    show_default=True,
)
SNAPSHOTS_OPTION = typer.Option(
    Path("contracts/snapshots"),
    "--snapshots",
    envvar="STARTER_SNAPSHOTS_DIR",
    help="Folder of the committed snapshot files and FROZEN.json (re-frozen by the bump).",
    show_default=True,
)


def read_state(url: str) -> ReleaseState:
    """The release projection of the ledger at ``url``, opened read-only."""
    from starter_ledger.ledger import Ledger
    from starter_ledger.storage import open_store
    from starter_ledger.versioning import load_state

    with Ledger(open_store(url, read_only=True)) as led:
        return load_state(led)


def warn_problems(state: ReleaseState) -> None:
    for problem in state.problems:
        typer.echo(f"warning: {safe(problem)}", err=True)


# -- release ---------------------------------------------------------------------------------


@release_app.command()
def bump(
    part: str = typer.Argument(..., help="major, minor, patch or prerelease."),
    pre: str | None = typer.Option(
        None,
        "--pre",
        help="Pre-release token: alpha, beta or rc (prerelease default rc; with major, minor "
        "or patch: the first pre-release of that version).",
    ),
    version_file: Path = VERSION_FILE_OPTION,
    snapshots: Path = SNAPSHOTS_OPTION,
    ledger: str = LEDGER_OPTION,
    key: str | None = KEY_OPTION,
    actor: str | None = ACTOR_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Move to the next version and record it in the ledger (version.bumped).

    Writes the version to the contracts' version file, re-freezes the snapshots (the OpenAPI
    document carries the version) and appends a signed version.bumped event. The current
    version comes from the ledger. A breaking contracts change since the last release needs a
    major bump (minor before 1.0.0); the bump is refused otherwise.
    """
    from starter_ledger.keystore import open_keystore
    from starter_ledger.ledger import Ledger
    from starter_ledger.versioning import bump as run_bump

    who = resolve_actor(actor)
    with notify_replicas(Ledger.open(ledger)) as led:
        signer = open_keystore(key or default_key_url(ledger)).load()
        result = run_bump(
            led,
            signer,
            who,
            part,
            pre=pre,
            version_file=version_file,
            snapshots=snapshots,
        )
    if json_out:
        print_json(result.to_dict())
        return
    old = result.old or f"{result.version_file} (first bump)"
    finished = " (finished an interrupted bump)" if result.resumed else ""
    typer.echo(
        f"bumped {old} -> {result.new} (PEP 440 {result.pep440}) at ledger entry "
        f"{result.seq}{finished}"
    )
    frozen = "froze" if result.freeze_appended else "snapshots already frozen at"
    typer.echo(f"{frozen} ledger entry {result.freeze_seq}: {len(result.snapshots)} snapshots")
    typer.echo(f"commit {result.version_file} and {snapshots}")


def _release_lines(release: Release) -> list[str]:
    lines = [
        f"version   {release.version} ({release.tag})",
        f"date      {release.date} (ledger entry {release.seq}, {release.occurred_at})",
        f"commit    {release.commit}",
        "artifacts",
    ]
    for a in release.artifacts:
        where = f" -> {safe(str(a['repository']))}" if a.get("repository") else ""
        lines.append(f"  {a['file']}  sha256:{a['sha256']}  {a['size']} bytes{where}")
    sbom = release.sbom
    if sbom is None:
        lines.append("sbom      none recorded before the tag")
    else:
        lines.append(
            f"sbom      sha256:{sbom['sha256']} (CycloneDX {sbom['spec_version']}, "
            f"{sbom['components']} components, {safe(sbom['subject'])}; entry {sbom['seq']})"
        )
    audit = release.audit
    if audit is None:
        lines.append("audit     none recorded before the tag")
    else:
        lines.append(
            f"audit     {audit['status']}: {audit['findings']} findings, {audit['skipped']} "
            f"skipped of {audit['dependencies']} dependencies ({safe(audit['tool'])}; "
            f"entry {audit['seq']})"
        )
    keys = ", ".join(f"{k['kid']} ({k['key_set']}, {k['alg']})" for k in release.keys)
    lines.append(f"keys      {keys or 'no active token-signing key'}")
    return lines


@release_app.command("list")
def list_releases(ledger: str = LEDGER_OPTION, json_out: bool = JSON_OPTION) -> None:
    """List every release (version, date, commit, artifacts) and the current version."""
    state = read_state(ledger)
    warn_problems(state)
    releases = state.all_releases()
    if json_out:
        print_json(
            {
                "current": state.current,
                "releases": [r.to_dict() for r in releases],
                "unreleased": len(state.unreleased),
                "problems": state.problems,
            }
        )
        return
    typer.echo(f"current version: {state.current or 'none (no version.bumped yet)'}")
    if not releases:
        typer.echo("no releases")
    for r in reversed(releases):
        typer.echo(
            f"{r.version:16s} {r.date}  {r.commit[:12]}  {len(r.artifacts)} artifacts  "
            f"{len(r.keys)} active keys  entry {r.seq}"
        )
    typer.echo(f"unreleased changelog entries: {len(state.unreleased)}")


@release_app.command()
def show(
    version: str = typer.Argument(..., help="The release's version, e.g. 1.4.0."),
    ledger: str = LEDGER_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Show one release: its commit, artifacts, SBOM, audit and active keys.

    Everything comes from the ledger: version, date, commit, artifact digests, the SBOM and
    audit recorded before the tag, and the token-signing keys active when it was tagged."""
    from starter_ledger.errors import InputRejectedError
    from starter_ledger.versioning import parse_semver

    wanted = version.removeprefix("v")
    parse_semver(wanted)
    state = read_state(ledger)
    warn_problems(state)
    release = state.release(wanted)
    if release is None:
        known = ", ".join(r.version for r in state.releases) or "none"
        raise InputRejectedError(
            f"the ledger has no release {wanted}", hint=f"released versions: {known}"
        )
    if json_out:
        print_json(release.to_dict())
        return
    for line in _release_lines(release):
        typer.echo(line)


# The gate, tag, check and publish commands live in their own module and join this group.
from starter_cli.release_tag_cmds import release_tag_app  # noqa: E402 - after release_app exists

release_app.add_typer(release_tag_app)
