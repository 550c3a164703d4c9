"""Release artifacts: a reproducible wheel build and its upload to a package index.

For: ``build_wheel`` (a wheel built offline with ``pip wheel --no-build-isolation --no-index``
and ``SOURCE_DATE_EPOCH`` fixed by the caller, so the same source gives the same bytes, hence the
same SHA-256 in the ledger's ``artifact.published`` event) and ``publish`` (``twine upload`` to a
PEP 503 / legacy-upload index). Not for: deciding what to release or recording it (the release
commands append the events), nor for signing (``gitsign``).

The epoch to use is the release commit's committer time (``gitsign.commit_time``): anyone who
checks out that commit can rebuild the identical wheel. Credentials reach twine only through its
environment (``TWINE_USERNAME`` / ``TWINE_PASSWORD``), never its command line, and are blanked out
of any twine output quoted in an error; a URL with ``user:pass@`` is refused.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from starter_ledger.errors import (
    InputRejectedError,
    LedgerError,
    LedgerUnavailableError,
    NotAuthorisedError,
)
from starter_ledger.secrets import require_secret

__all__ = ["Artifact", "build_wheel", "publish", "sha256_file"]

_BUILD_TIMEOUT = 300
_UPLOAD_TIMEOUT = 300
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_UNREACHABLE = (
    "ConnectionError",
    "Connection refused",
    "Max retries exceeded",
    "NewConnectionError",
    "Name or service not known",
    "timed out",
    "SSLError",
)


@dataclass(frozen=True)
class Artifact:
    """A built file: its name, SHA-256 (hex), size in bytes and where it lies."""

    file: str
    sha256: str
    size: int
    path: Path

    @classmethod
    def of(cls, path: Path) -> Artifact:
        """The artifact record of an existing file."""
        return cls(file=path.name, sha256=sha256_file(path), size=path.stat().st_size, path=path)


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes, as lower-case hex."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def build_wheel(project_dir: Path, out_dir: Path, *, source_date_epoch: int) -> Artifact:
    """Build the wheel of the project in ``project_dir`` (a ``pyproject.toml`` whose build backend,
    e.g. hatchling, is installed here) into ``out_dir``, with every timestamp set to
    ``source_date_epoch``; no network is used and nothing is taken from a cache."""
    if not (Path(project_dir) / "pyproject.toml").is_file():
        raise InputRejectedError(f"no pyproject.toml in {project_dir}", hint="name the project")
    if source_date_epoch < 315532800:  # zip stores no date before 1980-01-01
        raise InputRejectedError(
            f"SOURCE_DATE_EPOCH {source_date_epoch} is before 1980, which a wheel cannot hold",
            hint="use the release commit's time",
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="starter-wheel-") as scratch:
        argv = [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"),
            *("--no-index", "--no-cache-dir", "--disable-pip-version-check", "--isolated"),
            *("--quiet", "--wheel-dir", scratch, str(Path(project_dir).resolve())),
        ]
        env = dict(os.environ, SOURCE_DATE_EPOCH=str(source_date_epoch))
        proc = _run(argv, env, _BUILD_TIMEOUT, f"building the wheel of {project_dir}")
        wheels = sorted(Path(scratch).glob("*.whl"))
        if proc.returncode != 0 or len(wheels) != 1:
            raise InputRejectedError(
                f"building the wheel of {project_dir} failed: {_summary(proc.stderr or '')}",
                hint="is the build backend installed? (pip install hatchling)",
            )
        target = out_dir / wheels[0].name
        os.replace(wheels[0], target)
    return Artifact.of(target)


def publish(
    artifact_path: Path,
    repository_url: str,
    *,
    username: str | None = None,
    password: str | None = None,
) -> None:
    """Upload one wheel to the index at ``repository_url`` (its upload endpoint, e.g.
    ``https://upload.example/legacy/``) with twine. The user name and password come from the
    arguments, else ``TWINE_USERNAME`` / ``TWINE_PASSWORD``; plain ``http://`` is accepted only for
    a loopback address."""
    shown = _public_url(repository_url)
    _check_wheel(artifact_path)
    user = username if username is not None else os.environ.get("TWINE_USERNAME")
    if not user or not user.strip():
        raise InputRejectedError(
            f"no user name for the package index {shown}",
            hint="export TWINE_USERNAME (use __token__ with an API token)",
        )
    secret = require_secret(
        "TWINE_PASSWORD", password if password is not None else os.environ.get("TWINE_PASSWORD")
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWINE_")}
    env.update(TWINE_USERNAME=user.strip(), TWINE_PASSWORD=secret, NO_COLOR="1", TERM="dumb")
    argv = [
        *(sys.executable, "-m", "twine", "upload", "--non-interactive", "--disable-progress-bar"),
        *("--config-file", os.devnull, "--repository-url", repository_url, str(artifact_path)),
    ]
    proc = _run(argv, env, _UPLOAD_TIMEOUT, f"uploading to {shown}")
    if proc.returncode == 0:
        return
    said = _summary((proc.stdout + "\n" + proc.stderr).replace(secret, "***"))
    what = f"uploading {artifact_path.name} to {shown} failed: {said}"
    if any(word in said for word in _UNREACHABLE):
        raise LedgerUnavailableError(what, hint="check the index URL and that it is running")
    if re.search(r"\b(401|403)\b", said):
        raise NotAuthorisedError(what, hint="check TWINE_USERNAME / TWINE_PASSWORD for this index")
    if re.search(r"\b(400|409)\b", said):
        raise InputRejectedError(
            what,
            hint="an index never replaces a file: if this version is there already, compare its "
            "SHA-256 with the ledger's artifact.published event",
        )
    raise LedgerUnavailableError(what, hint="run 'twine upload --verbose' by hand for details")


# -- helpers ------------------------------------------------------------------------------------


def _public_url(url: str) -> str:
    """``url`` checked (http(s), a host, no credentials, TLS unless loopback) without its query."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        raise InputRejectedError("the package index URL is malformed") from None
    if parts.username is not None or parts.password is not None:
        raise InputRejectedError(
            "the package index URL holds credentials; they would be shown and logged",
            hint="drop 'user:password@' from the URL and export TWINE_USERNAME / TWINE_PASSWORD",
        )
    if parts.scheme not in ("http", "https") or not host:
        raise InputRejectedError(
            "the package index URL must be http(s)://HOST/...",
            hint="e.g. https://upload.pypi.org/legacy/",
        )
    netloc = host if port is None else f"{host}:{port}"
    if ":" in host:
        netloc = f"[{host}]" if port is None else f"[{host}]:{port}"
    shown = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    if parts.scheme == "http" and not _loopback(host):
        raise InputRejectedError(
            f"refusing to send a release and credentials to {shown} over plain http",
            hint="use the index's https:// URL",
        )
    return shown


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_wheel(path: Path) -> None:
    if not path.is_file():
        raise InputRejectedError(f"no artifact file {path}", hint="build the release wheel first")
    if path.suffix != ".whl" or not zipfile.is_zipfile(path):
        raise InputRejectedError(f"{path} is not a wheel (a .whl zip archive)")


def _run(
    argv: list[str], env: dict[str, str], timeout: int, doing: str
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise LedgerUnavailableError(f"{doing} took longer than {timeout} s") from None
    except OSError as e:
        raise LedgerError(f"{doing}: cannot run {' '.join(argv[:4])}: {e.strerror}") from None


def _summary(output: str) -> str:
    """The part of a tool's output that says what went wrong: from twine's first ``ERROR`` line,
    else the last line (a traceback's exception), on one line and at most 500 characters."""
    lines = [line.strip() for line in _ANSI.sub("", output).splitlines() if line.strip()]
    start = next((i for i, line in enumerate(lines) if line.startswith("ERROR")), None)
    picked = lines[start:] if start is not None else lines[-1:]
    return " ".join(picked)[:500] or "no output"
