"""``local_index``: a real ``pypiserver`` on 127.0.0.1 and a free port, for uploads and pip.

Without authentication (``-a . -P .``) and with its PyPI fallback off, so pip pointed at it alone
never reaches the internet. Used by ``test_artifacts`` (the ``index`` fixture) and by the
``release_demo`` script; stdlib and ``_keystore_case`` only, no pytest.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from _keystore_case import free_port

__all__ = ["Index", "IndexNotStartedError", "local_index"]

#: Seconds to wait for ``/health`` to answer.
_START_TIMEOUT = 30


@dataclass(frozen=True)
class Index:
    """A running local index: where to upload and where pip reads."""

    upload_url: str
    simple_url: str
    packages: Path


class IndexNotStartedError(Exception):
    """pypiserver exited or did not answer in time; the message holds its log."""


@contextlib.contextmanager
def local_index(folder: Path) -> Iterator[Index]:
    """Serve ``folder / "packages"`` (created here; ``folder`` must exist) until the block ends,
    logging to ``folder / "pypiserver.log"``. The server is always stopped afterwards."""
    packages = folder / "packages"
    packages.mkdir()
    log_path = folder / "pypiserver.log"
    port = free_port()
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "pypiserver", "run", "--host", "127.0.0.1", "--port"),
            *(str(port), "-a", ".", "-P", ".", "--disable-fallback", "--server", "wsgiref"),
            str(packages),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=1) as resp:  # noqa: S310
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise IndexNotStartedError(f"pypiserver did not start: {log_path.read_text()}")
            time.sleep(0.1)
        yield Index(upload_url=f"{base}/", simple_url=f"{base}/simple/", packages=packages)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
