"""Release tags signed with the ledger key in git's SSH format, checked with the real `git tag -v`.

Every test works in a fresh repository with a fixed author, committer and date, and with git's
global and system configuration switched off, so the user's own git settings play no part.
"""

from __future__ import annotations

import base64
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import make_signer
from starter_ledger.errors import InputRejectedError
from starter_ledger.gitsign import (
    allowed_signers,
    commit_time,
    create_tag,
    resolve_commit,
    ssh_private_key,
    ssh_public_key,
    tag_message,
    verify_tag,
)

PRINCIPAL = "release@example.com"
#: A C2SP checkpoint as a release tag carries it (a blank line, an em dash, base64).
CHECKPOINT = (
    "example.com/test-ledger\n"
    "7\n"
    "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
    "\n"
    "\u2014 example.com/test-ledger AAAAAbase64signature==\n"
)
COMMIT_DATE = "2024-05-01T12:00:00+00:00"


@pytest.fixture(autouse=True)
def _isolated_git(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("HOME", str(tmp_path))
    for who in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{who}_NAME", "Release Bot")
        monkeypatch.setenv(f"GIT_{who}_EMAIL", PRINCIPAL)
        monkeypatch.setenv(f"GIT_{who}_DATE", COMMIT_DATE)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=path, check=True)
    (path / "README").write_text("release me\n")
    subprocess.run(["git", "add", "README"], cwd=path, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "first"], cwd=path, check=True)
    return path


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)


def test_signed_tag_verifies_with_the_signers_allowed_signers_file(repo: Path) -> None:
    """`git tag -v` accepts a release tag with the allowed-signers line of the ledger key."""
    signer = make_signer("release")
    result = create_tag(repo, "v1.2.3", CHECKPOINT, signer.private_seed(), principal=PRINCIPAL)
    assert result.signed
    assert result.commit == resolve_commit(repo)
    assert verify_tag(repo, "v1.2.3", allowed_signers(PRINCIPAL, signer.public_jwk))

    signers_file = repo.parent / "allowed_signers"
    signers_file.write_text(allowed_signers(PRINCIPAL, signer.public_jwk))
    proc = _git(repo, "-c", f"gpg.ssh.allowedSignersFile={signers_file}", "tag", "-v", "v1.2.3")
    assert proc.returncode == 0, proc.stderr
    assert f'Good "git" signature for {PRINCIPAL}' in proc.stderr


def test_signed_tag_fails_with_another_keys_allowed_signers_file(repo: Path) -> None:
    """A tag signed by one key is not accepted on the word of another key."""
    signer, other = make_signer("release"), make_signer("someone-else")
    create_tag(repo, "v1.2.3", CHECKPOINT, signer.private_seed(), principal=PRINCIPAL)
    assert not verify_tag(repo, "v1.2.3", allowed_signers(PRINCIPAL, other.public_jwk))


def test_tag_message_carries_the_checkpoint_verbatim(repo: Path) -> None:
    """The tag's message is exactly the text given (the checkpoint), signature block aside."""
    signer = make_signer("release")
    create_tag(repo, "v1.2.3", CHECKPOINT, signer.private_seed(), principal=PRINCIPAL)
    assert tag_message(repo, "v1.2.3") == CHECKPOINT
    raw = _git(repo, "cat-file", "tag", "v1.2.3").stdout
    assert f"tagger starter-ledger <{PRINCIPAL}>" in raw
    assert "-----BEGIN SSH SIGNATURE-----" in raw


def test_existing_tag_is_refused(repo: Path) -> None:
    """A release tag is never moved: creating it a second time is refused."""
    signer = make_signer("release")
    create_tag(repo, "v1.2.3", CHECKPOINT, signer.private_seed(), principal=PRINCIPAL)
    before = _git(repo, "rev-parse", "refs/tags/v1.2.3").stdout
    with pytest.raises(InputRejectedError, match=r"tag v1\.2\.3 exists"):
        create_tag(repo, "v1.2.3", "another", signer.private_seed(), principal=PRINCIPAL)
    assert _git(repo, "rev-parse", "refs/tags/v1.2.3").stdout == before


def test_unsigned_tag_is_annotated_and_unverifiable(repo: Path) -> None:
    """Without a key file (a KMS signer) the tag is annotated but carries no signature."""
    signer = make_signer("release")
    result = create_tag(repo, "v1.2.3", CHECKPOINT, None, principal=PRINCIPAL)
    assert not result.signed
    assert _git(repo, "cat-file", "-t", "refs/tags/v1.2.3").stdout.strip() == "tag"
    assert tag_message(repo, "v1.2.3") == CHECKPOINT
    assert "SSH SIGNATURE" not in _git(repo, "cat-file", "tag", "v1.2.3").stdout
    assert not verify_tag(repo, "v1.2.3", allowed_signers(PRINCIPAL, signer.public_jwk))


def test_private_key_leaves_no_trace(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The private key is gone after signing: no temporary file, nothing in git's objects."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    signer = make_signer("release")
    seed = signer.private_seed()
    create_tag(repo, "v1.2.3", CHECKPOINT, seed, principal=PRINCIPAL)
    assert list(scratch.iterdir()) == []

    pem = ssh_private_key(seed)
    body = b"".join(line for line in pem.splitlines() if not line.startswith(b"-----"))
    needles = [
        seed,
        seed.hex().encode(),
        base64.b64encode(seed),
        base64.urlsafe_b64encode(seed).rstrip(b"="),
        body[:40],
        body[-40:],
    ]
    objects = subprocess.run(
        ["git", "cat-file", "--batch-all-objects", "--batch"], cwd=repo, capture_output=True
    ).stdout
    files = b"".join(p.read_bytes() for p in (repo / ".git").rglob("*") if p.is_file())
    shown = _git(repo, "tag", "-v", "v1.2.3").stderr.encode() + objects
    for needle in needles:
        assert needle not in objects
        assert needle not in files
        assert needle not in shown


def test_missing_repository_and_empty_repository_are_refused(tmp_path: Path) -> None:
    """Tagging outside a git repository, or one without commits, fails with a clear error."""
    with pytest.raises(InputRejectedError, match="no folder"):
        create_tag(tmp_path / "nowhere", "v1.0.0", "m", None, principal=PRINCIPAL)
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(InputRejectedError, match="not a git repository"):
        create_tag(plain, "v1.0.0", "m", None, principal=PRINCIPAL)
    empty = tmp_path / "empty"
    empty.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=empty, check=True)
    with pytest.raises(InputRejectedError, match="has no commit 'HEAD'"):
        create_tag(empty, "v1.0.0", "m", None, principal=PRINCIPAL)


@pytest.mark.parametrize("name", ["-v1", "v1..2", "v1 2", "v1~", "v1:2"])
def test_bad_tag_names_are_refused(repo: Path, name: str) -> None:
    """A tag name git would refuse (or read as an option) is rejected before git runs."""
    with pytest.raises(InputRejectedError, match="not a valid git tag name"):
        create_tag(repo, name, "m", None, principal=PRINCIPAL)


@pytest.mark.parametrize("principal", ["", "a b", "*", 'x"y', "a,b", "#x"])
def test_bad_principals_are_refused(principal: str) -> None:
    """A principal is matched literally, so pattern characters and spaces are refused."""
    with pytest.raises(InputRejectedError, match="principal"):
        allowed_signers(principal, make_signer("release").public_jwk)


def test_allowed_signers_line_and_public_key_format() -> None:
    """The allowed-signers line restricts the key to git and matches ssh-keygen's own encoding."""
    signer = make_signer("release")
    line = allowed_signers(PRINCIPAL, signer.public_jwk)
    assert line == f'{PRINCIPAL} namespaces="git" {ssh_public_key(signer.public_jwk)}\n'
    kind, blob, comment = ssh_public_key(signer.public_jwk).split(" ")
    assert (kind, comment) == ("ssh-ed25519", signer.kid)
    assert base64.b64decode(blob).endswith(base64.urlsafe_b64decode(signer.public_jwk["x"] + "="))


def test_private_key_is_openssh_format_ssh_keygen_reads(tmp_path: Path) -> None:
    """ssh-keygen derives the same public key from the OpenSSH private key as the JWK gives."""
    signer = make_signer("release")
    key = tmp_path / "k"
    key.write_bytes(ssh_private_key(signer.private_seed()))
    key.chmod(0o600)
    out = subprocess.run(["ssh-keygen", "-y", "-f", str(key)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[:2] == ssh_public_key(signer.public_jwk).split()[:2]


def test_commit_time_is_the_committer_date(repo: Path) -> None:
    """The build epoch of a release is its commit's committer time."""
    assert commit_time(repo, "HEAD") == 1714564800


def test_tag_points_at_the_named_commit(repo: Path) -> None:
    """A tag is made at the commit the release recorded, even when HEAD has moved on since."""
    recorded = resolve_commit(repo)
    subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "later"], cwd=repo, check=True)
    result = create_tag(repo, "v1.0.0", "m", None, principal=PRINCIPAL, commit=recorded)
    assert result.commit == recorded
    assert _git(repo, "rev-parse", "v1.0.0^{commit}").stdout.strip() == recorded
