"""Tagging a release from the ledger, publishing its wheel, and checking git tags against it.

For: ``tag_release`` (``starter-cli release tag``), ``publish_release`` (``release publish``) and
``check_tags`` (``release check``). Not for: the gates themselves (``gates``), building or
uploading (``artifacts``), or signing tags (``gitsign``).

``tag_release`` in order, each step refusing before anything is written:

1. replay the ledger; if it already records ``release.tagged`` for the current version, only the
   git tag can be missing (a crash after the append): create it from the recorded commit and
   checkpoint, or refuse when it exists (a release is tagged once);
2. evaluate every gate (``gates``) and refuse, naming every red one (``InputRejectedError``,
   exit 3);
3. refuse a repository with uncommitted changes to tracked files or untracked files in the
   contracts project (the wheel must be the commit's), and a version file that does not hold the
   ledger's current version;
4. build the ``starter-contracts`` wheel with ``SOURCE_DATE_EPOCH`` = the commit's time;
5. append ``artifact.published`` and ``release.tagged`` in one transaction; ``release.tagged``
   carries the ledger's latest checkpoint read just before (the checkpoint of the entries before
   the release, unless another writer appends in between: it is then still a checkpoint that the
   release entry extends);
6. create the annotated tag ``vX.Y.Z`` whose message is that checkpoint, SSH-signed with the
   ledger signer's seed when the signer is a file key.

A crash between 5 and 6 leaves a recorded release without a tag: ``release check`` reports it
and running ``release tag`` again finishes it (step 1).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from starter_ledger.errors import InputRejectedError
from starter_ledger.gates import Gate, collect, evaluate, failed
from starter_ledger.gitsign import (
    commit_time,
    create_tag,
    dirty_paths,
    list_tags,
    resolve_commit,
    run_git,
    tag_message,
)
from starter_ledger.ledger import Event, Ledger
from starter_ledger.versioning import load_state, read_version_file, to_pep440

if TYPE_CHECKING:
    from starter_events.releases import Release
    from starter_ledger.freeze import Source
    from starter_ledger.keys import Signer

__all__ = [
    "ARTIFACT_EVENT",
    "TAG_EVENT",
    "Drift",
    "PublishResult",
    "TagOutcome",
    "check_tags",
    "publish_release",
    "signer_seed",
    "tag_release",
]

ARTIFACT_EVENT = "artifact.published"
TAG_EVENT = "release.tagged"


@dataclass
class TagOutcome:
    """What ``tag_release`` did."""

    version: str
    tag: str
    commit: str
    artifacts: list[dict[str, Any]]
    checkpoint: str
    signed: bool
    #: Ledger entry of ``release.tagged``.
    seq: int
    #: True when the release was recorded before and only the git tag was created now.
    resumed: bool
    gates: list[Gate] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "tag": self.tag,
            "commit": self.commit,
            "artifacts": self.artifacts,
            "checkpoint": self.checkpoint,
            "signed": self.signed,
            "seq": self.seq,
            "resumed": self.resumed,
            "gates": [g.to_dict() for g in self.gates],
        }


def signer_seed(signer: Signer) -> bytes | None:
    """The 32-byte seed of a file key (an ``Ed25519Signer``), or None for a key that never leaves
    its store (its tags are unsigned)."""
    seed = getattr(signer, "private_seed", None)
    return seed() if callable(seed) else None


def _check_repo(repo: Path) -> None:
    if not Path(repo).is_dir() or run_git(repo, "rev-parse", "--git-dir").returncode != 0:
        raise InputRejectedError(
            f"{repo} is not a git repository", hint="run in the release's git clone (--repo)"
        )


def _finish(
    ledger: Ledger, release: Release, repo: Path, seed: bytes | None, principal: str
) -> TagOutcome:
    """The release is recorded: create its missing git tag, or refuse when it exists."""
    tags = list_tags(repo, "v*")
    if release.tag in tags:
        where = "" if tags[release.tag] == release.commit else " (at another commit!)"
        raise InputRejectedError(
            f"{release.version} is tagged already: {release.tag} exists in {repo}{where} and "
            f"the ledger records it at entry {release.seq}",
            hint="a release is tagged once: run 'starter-cli release bump' for the next one",
        )
    entry = ledger.entry(release.seq).envelope.payload
    checkpoint = str(entry["checkpoint"])
    made = create_tag(
        repo, release.tag, checkpoint, seed, principal=principal, commit=release.commit
    )
    return TagOutcome(
        version=release.version,
        tag=made.tag,
        commit=made.commit,
        artifacts=[dict(a) for a in release.artifacts],
        checkpoint=checkpoint,
        signed=made.signed,
        seq=release.seq,
        resumed=True,
    )


def tag_release(
    ledger: Ledger,
    signer: Signer,
    actor: str,
    repo: Path,
    contracts_dir: Path,
    *,
    out_dir: Path,
    principal: str,
    now: dt.datetime,
    min_severity: str,
    warn_within: dt.timedelta,
    snapshots: Path | None = None,
    seed: bytes | None = None,
    sources: Sequence[Source] | None = None,
) -> TagOutcome:
    """Tag the ledger's current version (see the module docstring for the steps).

    ``contracts_dir`` is the ``starter-contracts`` project (its ``pyproject.toml``) inside
    ``repo``; ``snapshots`` defaults to ``contracts_dir / "snapshots"``; ``seed`` signs the tag."""
    from starter_ledger.artifacts import build_wheel

    _check_repo(repo)
    state = load_state(ledger)
    if state.current is not None:
        done = state.release(state.current)
        if done is not None:
            return _finish(ledger, done, repo, seed, principal)
    facts = collect(ledger, snapshots or contracts_dir / "snapshots", now, sources=sources)
    gates = evaluate(facts, now, min_severity=min_severity, warn_within=warn_within)
    red = failed(gates)
    if red:
        listed = "; ".join(f"{g.name}: {g.detail}" for g in red)
        raise InputRejectedError(
            f"release {state.current or '(no version)'} is refused: {len(red)} of {len(gates)} "
            f"gates failed: {listed}",
            hint="'starter-cli release gates' lists every gate; the ledger is unchanged",
        )
    version = str(state.current)
    tag = f"v{version}"
    if tag in list_tags(repo, "v*"):
        raise InputRejectedError(
            f"tag {tag} exists in {repo} but the ledger records no release {version}",
            hint="a tag the ledger does not know is drift ('starter-cli release check'); "
            "remove it or bump the version",
        )
    dirty = dirty_paths(repo, under=contracts_dir)
    if dirty:
        raise InputRejectedError(
            f"{repo} has uncommitted changes ({len(dirty)}: {', '.join(dirty[:3])}); the wheel "
            "must be built from the tagged commit",
            hint="commit or stash them, then tag again",
        )
    in_file = read_version_file(contracts_dir / "starter_contracts" / "_version.py")
    if in_file != to_pep440(version):
        raise InputRejectedError(
            f"the version file in {contracts_dir} says {in_file}, the ledger {version}",
            hint="commit the version file written by 'starter-cli release bump'",
        )
    commit = resolve_commit(repo)
    wheel = build_wheel(contracts_dir, out_dir, source_date_epoch=commit_time(repo, commit))
    ref = {"file": wheel.file, "sha256": wheel.sha256, "size": wheel.size}
    checkpoint = ledger.latest_checkpoint()
    result = ledger.append_many(
        [
            Event(ARTIFACT_EVENT, {"version": version, **ref}),
            Event(
                TAG_EVENT,
                {
                    "version": version,
                    "tag": tag,
                    "commit": commit,
                    "artifacts": [ref],
                    "checkpoint": checkpoint,
                },
            ),
        ],
        signer,
        actor,
    )
    made = create_tag(repo, tag, checkpoint, seed, principal=principal, commit=commit)
    return TagOutcome(
        version=version,
        tag=tag,
        commit=commit,
        artifacts=[ref],
        checkpoint=checkpoint,
        signed=made.signed,
        seq=result.first_seq + 1,
        resumed=False,
        gates=gates,
    )


# -- check -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Drift:
    """One disagreement between git's ``v*`` tags and the ledger's releases."""

    tag: str
    kind: str  # "not-in-ledger", "other-commit", "not-in-git", "other-message"
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"tag": self.tag, "kind": self.kind, "detail": self.detail}


def check_tags(ledger: Ledger, repo: Path) -> list[Drift]:
    """Every ``v*`` tag of ``repo`` the ledger does not record (or records at another commit),
    every recorded release without its tag, and every tag whose message is not the recorded
    checkpoint. Empty when git and the ledger agree."""
    _check_repo(repo)
    tags = list_tags(repo, "v*")
    releases = {r.tag: r for r in load_state(ledger).all_releases()}
    drift: list[Drift] = []
    for tag in sorted(tags.keys() | releases.keys()):
        release = releases.get(tag)
        if release is None:
            drift.append(
                Drift(tag, "not-in-ledger", f"git tag {tag} ({tags[tag][:12]}) is not a release")
            )
        elif tag not in tags:
            drift.append(
                Drift(
                    tag,
                    "not-in-git",
                    f"release {release.version} (entry {release.seq}) has no git tag; "
                    "run 'starter-cli release tag' to create it",
                )
            )
        elif tags[tag] != release.commit:
            drift.append(
                Drift(
                    tag,
                    "other-commit",
                    f"git tag {tag} points at {tags[tag][:12]}, the ledger records "
                    f"{release.commit[:12]} (entry {release.seq})",
                )
            )
        else:
            recorded = str(ledger.entry(release.seq).envelope.payload["checkpoint"])
            try:
                message = tag_message(repo, tag)
            except InputRejectedError:
                message = ""
            if message.rstrip("\n") != recorded.rstrip("\n"):
                drift.append(
                    Drift(tag, "other-message", f"tag {tag}'s message is not the checkpoint")
                )
    return drift


# -- publish -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishResult:
    version: str
    file: str
    sha256: str
    repository: str
    seq: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "file": self.file,
            "sha256": self.sha256,
            "repository": self.repository,
            "seq": self.seq,
        }


def _shown(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def publish_release(
    ledger: Ledger,
    signer: Signer,
    actor: str,
    repository_url: str,
    out_dir: Path,
    *,
    version: str | None = None,
) -> PublishResult:
    """Upload the wheel of a tagged release found in ``out_dir`` after checking its SHA-256 and
    size against the ledger's ``artifact.published``, then record the upload as a second
    ``artifact.published`` with ``repository`` set (the URL without query or credentials).

    Refuses a release that is not tagged, a missing or altered file, and a file the ledger
    already records as uploaded to this repository."""
    from starter_ledger.artifacts import publish, sha256_file

    state = load_state(ledger)
    wanted = version.removeprefix("v") if version else None
    last = state.last_release
    release = state.release(wanted) if wanted else (state.release(last.version) if last else None)
    if release is None:
        raise InputRejectedError(
            f"the ledger has no release {wanted or ''}".rstrip(),
            hint="run 'starter-cli release list', or 'starter-cli release tag' first",
        )
    wheels = [a for a in release.artifacts if str(a["file"]).endswith(".whl")]
    if not wheels:
        raise InputRejectedError(f"release {release.version} records no wheel")
    art = wheels[0]
    path = out_dir / str(art["file"])
    if not path.is_file():
        raise InputRejectedError(
            f"no file {path} for release {release.version}",
            hint="pass --out with the folder 'release tag' built into",
        )
    digest = sha256_file(path)
    if digest != art["sha256"] or path.stat().st_size != art["size"]:
        raise InputRejectedError(
            f"{path} has sha256 {digest}, but the ledger records {art['sha256']} for "
            f"{release.version}: it is not the tagged build",
            hint="rebuild at the release commit, or fetch the file the release built",
        )
    shown = _shown(repository_url)
    for _, entry in ledger.entries(release.seq):
        env = entry.envelope
        if (
            env.type == ARTIFACT_EVENT
            and env.payload.get("version") == release.version
            and env.payload.get("file") == art["file"]
            and env.payload.get("repository") == shown
        ):
            raise InputRejectedError(
                f"{art['file']} is recorded as uploaded to {shown} already",
                hint="an index never replaces a file",
            )
    publish(path, repository_url)
    payload = {
        "version": release.version,
        "file": art["file"],
        "sha256": art["sha256"],
        "size": art["size"],
        "repository": shown,
    }
    result = ledger.append(ARTIFACT_EVENT, payload, signer, actor)
    return PublishResult(release.version, str(art["file"]), digest, shown, result.first_seq)
