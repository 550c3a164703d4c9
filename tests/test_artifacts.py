"""The release wheel: built reproducibly, uploaded to a real package index, installed back.

The index is a real ``pypiserver`` on 127.0.0.1 and a free port, without authentication and with
its PyPI fallback off; pip is pointed at it alone (``--isolated --index-url ... --no-deps``), so
nothing here reaches the internet. Failures of the index (refused login) come from a small
stdlib HTTP server, which also shows what credentials twine actually sent.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from _keystore_case import free_port
from _pypiserver import Index, IndexNotStartedError, local_index
from conftest import ROOT
from starter_ledger.artifacts import Artifact, build_wheel, publish, sha256_file
from starter_ledger.errors import (
    InputRejectedError,
    KeyStoreError,
    LedgerUnavailableError,
    NotAuthorisedError,
)

CONTRACTS = ROOT / "contracts"
#: A fixed release commit time (2024-05-01T12:00:00Z), as the release command passes it.
EPOCH = 1714564800
USER = "release-bot"
#: Never checked: the tests that use it fail before any upload.
TOKEN = secrets.token_urlsafe(16)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Artifact:
    return build_wheel(CONTRACTS, tmp_path_factory.mktemp("dist"), source_date_epoch=EPOCH)


@pytest.fixture
def index(tmp_path: Path) -> Iterator[Index]:
    try:
        with local_index(tmp_path) as served:
            yield served
    except IndexNotStartedError as e:
        pytest.fail(str(e))


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--isolated", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_two_builds_give_identical_bytes(wheel: Artifact, tmp_path: Path) -> None:
    """The same source and epoch give the same wheel, whatever the files' times and modes."""
    copy = tmp_path / "contracts"
    shutil.copytree(CONTRACTS, copy, ignore=shutil.ignore_patterns("__pycache__"))
    for path in copy.rglob("*"):
        os.utime(path, (2_000_000_000, 2_000_000_000))
        if path.is_file():
            path.chmod(0o664)
    again = build_wheel(copy, tmp_path / "out", source_date_epoch=EPOCH)
    assert (again.file, again.sha256, again.size) == (wheel.file, wheel.sha256, wheel.size)
    assert again.path.read_bytes() == wheel.path.read_bytes()
    assert wheel.file == "starter_contracts-0.1.0-py3-none-any.whl"
    assert wheel.sha256 == sha256_file(wheel.path)
    assert wheel.size == wheel.path.stat().st_size


def test_the_epoch_is_in_the_bytes(wheel: Artifact, tmp_path: Path) -> None:
    """SOURCE_DATE_EPOCH is what fixes the timestamps: another epoch gives another digest."""
    other = build_wheel(CONTRACTS, tmp_path, source_date_epoch=EPOCH + 86400)
    assert other.sha256 != wheel.sha256


def test_build_refuses_a_folder_without_a_project(tmp_path: Path) -> None:
    """Building anything but a pyproject project fails with an input error naming the folder."""
    with pytest.raises(InputRejectedError, match=r"no pyproject\.toml"):
        build_wheel(tmp_path, tmp_path / "out", source_date_epoch=EPOCH)


def test_upload_then_install_gives_the_ledger_digest(
    wheel: Artifact, index: Index, tmp_path: Path
) -> None:
    """The file pip fetches and installs from the index has the SHA-256 the ledger records."""
    publish(wheel.path, index.upload_url, username=USER, password=secrets.token_urlsafe(16))
    assert sha256_file(index.packages / wheel.file) == wheel.sha256

    downloads = tmp_path / "downloads"
    proc = _pip(
        *("download", "--no-deps", "--no-cache-dir", "--index-url", index.simple_url),
        *("-d", str(downloads), "starter-contracts==0.1.0"),
    )
    assert proc.returncode == 0, proc.stderr
    assert sha256_file(downloads / wheel.file) == wheel.sha256

    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"starter-contracts==0.1.0 --hash=sha256:{wheel.sha256}\n")
    report = tmp_path / "report.json"
    proc = _pip(
        *("install", "--no-deps", "--no-cache-dir", "--index-url", index.simple_url),
        *("--require-hashes", "-r", str(requirements), "--target", str(tmp_path / "site")),
        *("--report", str(report)),
    )
    assert proc.returncode == 0, proc.stderr
    [installed] = json.loads(report.read_text())["install"]
    assert installed["download_info"]["archive_info"]["hashes"]["sha256"] == wheel.sha256
    assert (tmp_path / "site" / "starter_contracts" / "py.typed").is_file()


def test_uploading_the_same_version_again_is_refused(wheel: Artifact, index: Index) -> None:
    """An index never replaces a published file; a second upload is rejected, not ignored."""
    password = secrets.token_urlsafe(16)
    publish(wheel.path, index.upload_url, username=USER, password=password)
    with pytest.raises(InputRejectedError, match="400") as caught:
        publish(wheel.path, index.upload_url, username=USER, password=password)
    assert password not in str(caught.value)
    assert "artifact.published" in (caught.value.hint or "")


def test_unreachable_index_is_unavailable(wheel: Artifact) -> None:
    """An index nobody listens on is reported as unavailable, naming the URL."""
    url = f"http://127.0.0.1:{free_port()}/"
    with pytest.raises(LedgerUnavailableError, match=r"127\.0\.0\.1") as caught:
        publish(wheel.path, url, username=USER, password=secrets.token_urlsafe(16))
    assert "Connection" in str(caught.value)


class _Refusing(BaseHTTPRequestHandler):
    seen: list[str | None] = []  # noqa: RUF012 - one list per test, reset by the fixture

    def do_POST(self) -> None:
        self.seen.append(self.headers.get("Authorization"))
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(403, "Forbidden")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def refusing_index() -> Iterator[str]:
    _Refusing.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/legacy/"
    finally:
        server.shutdown()
        server.server_close()


def test_refused_login_is_not_authorised_and_keeps_the_password_secret(
    wheel: Artifact, refusing_index: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Credentials from the environment reach the index, and never the error message."""
    password = secrets.token_urlsafe(16)
    monkeypatch.setenv("TWINE_USERNAME", USER)
    monkeypatch.setenv("TWINE_PASSWORD", password)
    with pytest.raises(NotAuthorisedError, match="403") as caught:
        publish(wheel.path, refusing_index)
    assert password not in f"{caught.value} {caught.value.hint}"
    assert _Refusing.seen
    assert _Refusing.seen[0] == "Basic " + base64.b64encode(f"{USER}:{password}".encode()).decode()


def test_url_with_credentials_is_refused(wheel: Artifact) -> None:
    """user:pass@ in the URL is refused, with a hint to use the environment, and not echoed."""
    with pytest.raises(InputRejectedError, match="credentials") as caught:
        publish(wheel.path, "https://bot:s3cr3t-Value@index.example/legacy/", password="x" * 3)
    assert "s3cr3t-Value" not in f"{caught.value} {caught.value.hint}"
    assert "TWINE_PASSWORD" in (caught.value.hint or "")


@pytest.mark.parametrize(
    "url", ["http://index.example/legacy/", "ftp://127.0.0.1/", "file:///tmp/x", "not a url"]
)
def test_insecure_or_odd_urls_are_refused(wheel: Artifact, url: str) -> None:
    """Releases and passwords go over https, except to a loopback index."""
    with pytest.raises(InputRejectedError):
        publish(wheel.path, url, username=USER, password=secrets.token_urlsafe(16))


@pytest.mark.parametrize("password", ["", "changeme", "<your-token>", "xxxx"])
def test_placeholder_passwords_are_refused(wheel: Artifact, password: str) -> None:
    """A forgotten placeholder fails before any upload, naming the variable, not the value."""
    with pytest.raises(KeyStoreError, match="TWINE_PASSWORD"):
        publish(wheel.path, "https://index.example/legacy/", username=USER, password=password)


def test_missing_user_name_is_refused(wheel: Artifact, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without TWINE_USERNAME the upload is refused with a hint, before twine runs."""
    monkeypatch.delenv("TWINE_USERNAME", raising=False)
    with pytest.raises(InputRejectedError, match="no user name"):
        publish(wheel.path, "https://index.example/legacy/", password=secrets.token_urlsafe(16))


def test_only_wheels_are_published(tmp_path: Path) -> None:
    """A missing file or one that is not a wheel archive is refused before any upload."""
    with pytest.raises(InputRejectedError, match="no artifact file"):
        publish(tmp_path / "nope.whl", "https://index.example/legacy/", password=TOKEN)
    fake = tmp_path / "fake-0.1.0-py3-none-any.whl"
    fake.write_bytes(b"not a zip")
    with pytest.raises(InputRejectedError, match="not a wheel"):
        publish(fake, "https://index.example/legacy/", password=TOKEN)
