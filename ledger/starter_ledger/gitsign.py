"""Release tags in git, signed with the ledger signer's Ed25519 key in git's SSH signature format.

For: ``create_tag`` (an annotated tag whose message carries the release checkpoint, signed with
``gpg.format=ssh`` when the signer's seed is at hand, i.e. for a ``file://`` key), ``verify_tag``
(``git tag -v`` against an allowed-signers text), ``allowed_signers`` (the line that trusts the
ledger key for git), the OpenSSH encodings of the key, and the commit facts a release records
(``resolve_commit``, ``commit_time``), plus the small git runner the release code shares
(``run_git``, ``list_tags``, ``dirty_paths``). Not for: keys that never leave a KMS or Vault (git
can only sign with a key file or an agent; such releases get an unsigned tag and rely on the
ledger's own signature).

The private key exists on disk only while ``git tag -s`` runs: in a fresh 0700 folder, in a file
created with ``O_EXCL`` and mode 0600, overwritten and removed in a ``finally`` block. It never
appears in an exception message, a log line or the tag; git's output is reported only on failure
and holds no key material (``ssh-keygen`` prints file names and fingerprints, never keys).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from starter_ledger.errors import InputRejectedError, KeyStoreError, LedgerError
from starter_ledger.keys import public_key_bytes, thumbprint

__all__ = [
    "TagResult",
    "allowed_signers",
    "commit_time",
    "create_tag",
    "dirty_paths",
    "list_tags",
    "resolve_commit",
    "run_git",
    "ssh_private_key",
    "ssh_public_key",
    "tag_message",
    "verify_tag",
]

#: Principals are matched literally: no pattern characters, quotes, commas or white space.
_PRINCIPAL = re.compile(r"^[A-Za-z0-9._+@-]{1,200}$")
_SIGNATURE_START = "-----BEGIN SSH SIGNATURE-----"
_TIMEOUT = 60


@dataclass(frozen=True)
class TagResult:
    """A tag that was created: its name, the full commit id it points at, whether it is signed."""

    tag: str
    commit: str
    signed: bool


def ssh_private_key(seed: bytes) -> bytes:
    """The unencrypted OpenSSH private key (PEM-armoured) of a 32-byte Ed25519 seed.

    Secret: write it only to a 0600 file that is removed after use, never to a log.
    """
    if len(seed) != 32:
        raise KeyStoreError("an Ed25519 private key seed has 32 bytes")
    return Ed25519PrivateKey.from_private_bytes(seed).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )


def ssh_public_key(public_jwk: Mapping[str, str], comment: str | None = None) -> str:
    """``ssh-ed25519 AAAA... COMMENT`` for an OKP Ed25519 JWK; the comment defaults to its kid."""
    raw = public_key_bytes(dict(public_jwk))
    line = (
        Ed25519PublicKey.from_public_bytes(raw)
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    note = thumbprint(dict(public_jwk)) if comment is None else comment
    return f"{line} {note}" if note else line


def allowed_signers(principal: str, public_jwk: Mapping[str, str]) -> str:
    """One line of a git allowed-signers file (``gpg.ssh.allowedSignersFile``), ending in a
    newline: ``principal`` may sign git objects (only: ``namespaces="git"``) with this key."""
    _check_principal(principal)
    return f'{principal} namespaces="git" {ssh_public_key(public_jwk)}\n'


def run_git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``git args`` in ``repo`` without a terminal prompt, an SSH agent or a locale; a missing
    git is an ``InputRejectedError``, git that cannot run (or times out) a ``LedgerError``. The
    exit status is the caller's to check."""
    return _run([_git_binary(), *args], repo)


def list_tags(repo: Path, pattern: str) -> dict[str, str]:
    """Each tag matching ``pattern`` (a ``refs/tags/`` glob, e.g. ``v*``) -> the commit it points
    at (peeled through annotated tags)."""
    proc = run_git(
        repo,
        "for-each-ref",
        "--format=%(refname:strip=2) %(objectname) %(*objectname)",
        f"refs/tags/{pattern}",
    )
    if proc.returncode != 0:
        raise LedgerError(f"cannot list the tags of {repo}: {proc.stderr.strip()[:300]}")
    out: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            out[parts[0]] = parts[2] if len(parts) > 2 else parts[1]
    return out


def dirty_paths(repo: Path, under: Path | None = None) -> list[str]:
    """``git status --porcelain`` lines, sorted: uncommitted changes to tracked files, and
    untracked files under ``under`` (anywhere in ``repo`` when None). Empty for a clean tree."""
    tracked = run_git(repo, "status", "--porcelain", "--untracked-files=no")
    where = [] if under is None else ["--", str(under.resolve())]
    untracked = run_git(repo, "status", "--porcelain", "--untracked-files=all", *where)
    lines = tracked.stdout.splitlines() + [
        line for line in untracked.stdout.splitlines() if line.startswith("??")
    ]
    return sorted(set(lines))


def resolve_commit(repo: Path, rev: str = "HEAD") -> str:
    """The full commit id ``rev`` names in ``repo``; refuses a folder that is no git repository
    and a repository without commits."""
    git = _git_binary()
    _check_repo(git, repo)
    if rev.startswith("-"):
        raise InputRejectedError(f"{rev!r} is not a git revision")
    proc = _run([git, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], repo)
    if proc.returncode != 0:
        raise InputRejectedError(
            f"git repository {repo} has no commit {rev!r}",
            hint="commit the release first" if rev == "HEAD" else "name an existing commit",
        )
    return proc.stdout.strip()


def commit_time(repo: Path, commit: str) -> int:
    """The committer time (Unix seconds) of ``commit``: the ``SOURCE_DATE_EPOCH`` of its build."""
    full = resolve_commit(repo, commit)
    proc = _run([_git_binary(), "show", "-s", "--format=%ct", full], repo)
    return int(proc.stdout.strip())


def create_tag(
    repo: Path,
    tag: str,
    message: str,
    signer_seed: bytes | None,
    *,
    principal: str,
    tagger_name: str = "starter-ledger",
    commit: str = "HEAD",
) -> TagResult:
    """Create the annotated tag ``tag`` at ``commit`` with ``message`` verbatim (e.g. the release
    checkpoint), signed in git's SSH format with ``signer_seed`` when one is given, else unsigned.

    The tagger is ``tagger_name <principal>``. Refuses a tag that exists, a bad tag name, a folder
    that is no git repository and a repository without commits (``InputRejectedError``); a
    missing ``ssh-keygen`` is a ``KeyStoreError`` (the key cannot be used).
    """
    _check_principal(principal)
    if not tagger_name.strip() or any(c in tagger_name for c in "<>\n"):
        raise InputRejectedError(f"{tagger_name!r} is not a usable tagger name")
    git = _git_binary()
    full = resolve_commit(repo, commit)
    if tag.startswith("-") or _run([git, "check-ref-format", f"refs/tags/{tag}"], repo).returncode:
        raise InputRejectedError(f"{tag!r} is not a valid git tag name")
    exists = _run([git, "rev-parse", "--verify", "--quiet", f"refs/tags/{tag}"], repo)
    if exists.returncode == 0:
        raise InputRejectedError(
            f"tag {tag} exists in {repo}", hint="a release tag is never moved: bump the version"
        )
    with _private_dir() as work:
        message_file = work / "message"
        message_file.write_text(message if message.endswith("\n") else message + "\n", "utf-8")
        key_file = work / "signing-key"
        if signer_seed is None:
            config = ["-c", "tag.gpgSign=false"]
            args = [*config, "tag", "-a", "--no-sign"]
        else:
            ssh_keygen = shutil.which("ssh-keygen")
            if ssh_keygen is None:
                raise KeyStoreError(
                    "ssh-keygen is not installed; git needs it to sign tags in SSH format",
                    hint="install OpenSSH's client tools (e.g. apt-get install openssh-client)",
                )
            config = ["-c", "gpg.format=ssh", "-c", f"gpg.ssh.program={ssh_keygen}"]
            config += ["-c", f"user.signingkey={key_file}"]
            args = [*config, "tag", "-s"]
        try:
            if signer_seed is not None:
                _write_secret(key_file, ssh_private_key(signer_seed))
            proc = _run(
                [git, *args, "--cleanup=verbatim", "-F", str(message_file), tag, full],
                repo,
                tmpdir=work,
                tagger=(tagger_name, principal),
            )
        finally:
            if signer_seed is not None:
                _shred(key_file)
    if proc.returncode != 0:
        raise LedgerError(
            f"git could not create tag {tag} in {repo}: {_last_words(proc)}",
            hint="check the repository with 'git status' and 'git tag -l'",
        )
    return TagResult(tag=tag, commit=full, signed=signer_seed is not None)


def verify_tag(repo: Path, tag: str, allowed_signers_text: str) -> bool:
    """True when ``git tag -v`` accepts ``tag``'s SSH signature by a key of
    ``allowed_signers_text``; False for a bad, unsigned or untrusted tag. A missing tag is an
    ``InputRejectedError``."""
    git = _git_binary()
    _check_tag_exists(git, repo, tag)
    with _private_dir() as work:
        signers = work / "allowed_signers"
        signers.write_text(allowed_signers_text, "utf-8")
        proc = _run(
            [git, "-c", f"gpg.ssh.allowedSignersFile={signers}", "tag", "-v", tag],
            repo,
            tmpdir=work,
        )
    return proc.returncode == 0


def tag_message(repo: Path, tag: str) -> str:
    """The message of the annotated tag ``tag``, without its signature block."""
    git = _git_binary()
    _check_tag_exists(git, repo, tag)
    proc = _run([git, "cat-file", "tag", f"refs/tags/{tag}"], repo)
    if proc.returncode != 0:
        raise InputRejectedError(f"tag {tag} in {repo} is not an annotated tag")
    body = proc.stdout.split("\n\n", 1)[1] if "\n\n" in proc.stdout else ""
    return body.split(_SIGNATURE_START, 1)[0]


# -- helpers ------------------------------------------------------------------------------------


def _check_principal(principal: str) -> None:
    if not _PRINCIPAL.match(principal):
        raise InputRejectedError(
            f"{principal!r} is not a usable signer principal",
            hint="use an e-mail-like name: letters, digits and . _ + @ - only",
        )


def _git_binary() -> str:
    git = shutil.which("git")
    if git is None:
        raise InputRejectedError("git is not installed", hint="install git to tag releases")
    return git


def _check_repo(git: str, repo: Path) -> None:
    if not Path(repo).is_dir():
        raise InputRejectedError(f"no folder {repo} to tag", hint="run in the release's git clone")
    proc = _run([git, "rev-parse", "--git-dir"], repo)
    if proc.returncode != 0:
        raise InputRejectedError(
            f"{repo} is not a git repository", hint="run in the release's git clone"
        )


def _check_tag_exists(git: str, repo: Path, tag: str) -> None:
    _check_repo(git, repo)
    if (
        tag.startswith("-")
        or _run([git, "rev-parse", "--verify", "--quiet", f"refs/tags/{tag}"], repo).returncode
    ):
        raise InputRejectedError(f"no tag {tag!r} in {repo}")


def _run(
    argv: list[str],
    repo: Path,
    *,
    tmpdir: Path | None = None,
    tagger: tuple[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["LC_ALL"] = "C"
    if tagger is not None:  # the tagger is git's committer; the environment outranks -c user.*
        env["GIT_COMMITTER_NAME"], env["GIT_COMMITTER_EMAIL"] = tagger
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)  # git's signing buffer and ssh-keygen's .sig land here
    try:
        return subprocess.run(
            argv,
            cwd=repo,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            encoding="utf-8",
            errors="replace",
            timeout=_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise LedgerError(f"cannot run git in {repo}: {e}") from None


def _last_words(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [line.strip() for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
    return " / ".join(lines[-3:])[:500] or f"exit status {proc.returncode}"


@contextlib.contextmanager
def _private_dir() -> Iterator[Path]:
    """A fresh folder only this user can enter (``mkdtemp`` makes it 0700), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="starter-gitsign-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _write_secret(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _shred(path: Path) -> None:
    """Overwrite the key file with zeros, then remove it (best effort on any file system)."""
    with contextlib.suppress(FileNotFoundError):
        size = path.stat().st_size
        with path.open("r+b") as f:
            f.write(b"\0" * size)
            f.flush()
            os.fsync(f.fileno())
        path.unlink()
