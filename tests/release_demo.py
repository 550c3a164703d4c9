"""Release demo: one scripted release from the ledger, end to end, in a throw-away copy.

Usage: ``python tests/release_demo.py`` (``just release-demo``; ``tests/test_release_demo.py``
runs it too). A script, not a pytest module.

In a temporary folder (removed at the end) it makes a git repository holding a copy of
``contracts/`` (first on ``PYTHONPATH``, so the real checkout is never bumped) and a new ledger
beside it, then runs what a release manager runs, each step a ``starter-cli`` command:

1. ``release bump minor``, which writes the version file and freezes the schema snapshots;
2. ``contracts check`` against that freeze;
3. ``sbom record`` (this environment, CycloneDX) and ``audit record --from`` a clean pip-audit
   report (the demo never reaches the network, so it ingests a report instead of running
   pip-audit);
4. ``keys rotate --activate-now`` and a ``changelog add``;
5. ``release gates``, then ``release tag``, and ``git tag -v`` of the SSH-signed tag with the
   line ``release allowed-signers`` prints;
6. ``release publish`` to a pypiserver started on a free 127.0.0.1 port, then ``pip download``
   from it, checking that the digest equals the ledger's ``artifact.published``;
7. ``changelog write`` and ``changelog check``, ``release check``, ``release show`` and
   ``ledger verify``.

It prints one ``ok:`` line per step and exits 0, or ``FAIL:`` with the command's output and exits
1. The index is always stopped and the folder removed. Only loopback is used.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # a script: its helpers are beside it

from _pypiserver import IndexNotStartedError, local_index  # noqa: E402

CLEAN_AUDIT = ROOT / "tests" / "data" / "pip-audit" / "clean.json"
PRINCIPAL = "release@starter-ledger.demo"


class Failed(Exception):
    pass


def ok(text: str) -> None:
    print(f"ok: {text}", flush=True)


class Demo:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.repo = tmp / "repo"
        self.contracts = self.repo / "contracts"
        self.dist = tmp / "dist"
        self.ledger = f"sqlite:///{tmp / 'ledger' / 'ledger.db'}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STARTER_", "GIT_"))}
        env.update(
            PYTHONPATH=str(self.contracts),
            STARTER_LEDGER_URL=self.ledger,
            STARTER_ACTOR="release-demo",
            STARTER_RELEASE_PRINCIPAL=PRINCIPAL,
            GIT_CONFIG_NOSYSTEM="1",
            GIT_CONFIG_GLOBAL=os.devnull,
            HOME=str(tmp),
            NO_PROXY="127.0.0.1,localhost",
            PIP_DISABLE_PIP_VERSION_CHECK="1",
        )
        for who in ("AUTHOR", "COMMITTER"):
            env[f"GIT_{who}_NAME"] = "Release Demo"
            env[f"GIT_{who}_EMAIL"] = PRINCIPAL
        self.env = env

    def run(self, *argv: str, check: bool = True, **extra: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            argv,
            cwd=self.repo,
            env={**self.env, **extra},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if check and proc.returncode != 0:
            raise Failed(
                f"{' '.join(argv[:6])} exited {proc.returncode}\n{proc.stdout}{proc.stderr}"
            )
        return proc

    def cli(self, *args: str, check: bool = True, **extra: str) -> subprocess.CompletedProcess[str]:
        return self.run(sys.executable, "-m", "starter_cli", *args, check=check, **extra)

    def json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json").stdout)

    def git(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run("git", *args)

    def commit(self, message: str) -> None:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)


def prepare(d: Demo) -> None:
    d.repo.mkdir()
    shutil.copytree(
        ROOT / "contracts",
        d.contracts,
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist"),
    )
    shutil.copy(ROOT / "CHANGELOG.md", d.repo / "CHANGELOG.md")
    (d.repo / ".gitignore").write_text("__pycache__/\n*.pyc\n")
    d.git("init", "-q", "-b", "main")
    d.commit("contracts")
    init = d.json("ledger", "init", "--origin", "demo.example/release-ledger")
    ok(f"a git repository with a copy of contracts/ and a new ledger ({init['origin']})")


def bump(d: Demo) -> str:
    out = d.json(
        "release",
        "bump",
        "minor",
        "--version-file",
        str(d.contracts / "starter_contracts" / "_version.py"),
        "--snapshots",
        str(d.contracts / "snapshots"),
    )
    version = str(out.get("new") or out.get("version"))
    d.commit(f"release {version}")
    d.cli(
        "contracts",
        "check",
        "--snapshots",
        str(d.contracts / "snapshots"),
        "--ledger",
        d.ledger,
    )
    old = out.get("old") or "the version file's (first bump)"
    ok(f"release bump minor: {old} -> {version}; snapshots frozen; contracts check ok")
    return version


def record(d: Demo) -> None:
    sbom = d.json("sbom", "record")
    ok(
        f"sbom record: {sbom.get('components')} components, sha256 "
        f"{str(sbom.get('sha256'))[:12]}..., CycloneDX {sbom.get('spec_version')}"
    )
    audit = d.json("audit", "record", "--from", str(CLEAN_AUDIT))
    ok(f"audit record --from {CLEAN_AUDIT.name}: {audit.get('status')}")
    key = d.json("keys", "rotate", "--activate-now")
    ok(f"keys rotate --activate-now: {key['steps'][0]['kid']} active")
    d.cli("changelog", "add", "--category", "Added", "The release demo")


def tag(d: Demo, version: str) -> str:
    gates = d.cli("release", "gates", "--repo", str(d.repo), "--json", check=False)
    listed = json.loads(gates.stdout)["gates"]
    red = [g for g in listed if not g["ok"]]
    if gates.returncode != 0 or red:
        raise Failed(f"gates are red: {red}")
    ok(f"release gates: all {len(listed)} green")
    d.cli("release", "tag", "--repo", str(d.repo), "--out", str(d.dist))
    signers = d.cli("release", "allowed-signers").stdout
    allowed = d.tmp / "allowed_signers"
    allowed.write_text(signers)
    verify = d.run("git", "-c", f"gpg.ssh.allowedSignersFile={allowed}", "tag", "-v", f"v{version}")
    if "Good" not in verify.stderr + verify.stdout:
        raise Failed(f"git tag -v did not report a good signature:\n{verify.stderr}")
    ok(f"release tag: v{version} created; git tag -v: good SSH signature by {PRINCIPAL}")
    return version


def publish(d: Demo, version: str) -> None:
    with local_index(d.tmp) as index:
        d.cli(
            "release",
            "publish",
            "--repository",
            index.upload_url,
            "--out",
            str(d.dist),
            TWINE_USERNAME="release-demo",
            TWINE_PASSWORD=secrets.token_urlsafe(16),
        )
        shown = d.json("release", "show", version)
        artifacts = shown.get("artifacts") or []
        wheel = next(a for a in artifacts if str(a["file"]).endswith(".whl"))
        got = d.tmp / "downloaded"
        d.run(
            *(sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir"),
            *("--index-url", index.simple_url, "-d", str(got)),
            f"starter-contracts=={version}",
        )
        (file,) = got.glob("*.whl")
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
        if digest != wheel["sha256"]:
            raise Failed(
                f"downloaded {file.name} has sha256 {digest}, the ledger {wheel['sha256']}"
            )
        ok(
            f"release publish to {index.upload_url}; pip download gives the ledger's sha256 "
            f"{digest[:12]}..."
        )


def finish(d: Demo, version: str) -> None:
    changelog = d.repo / "CHANGELOG.md"
    d.cli("changelog", "write", "--file", str(changelog))
    d.cli("changelog", "check", "--file", str(changelog))
    text = changelog.read_text()
    if f"## [{version}]" not in text:
        raise Failed(f"CHANGELOG.md has no slice for {version}:\n{text[:800]}")
    ok(f"changelog write: CHANGELOG.md has an Unreleased slice and [{version}]; check ok")
    d.cli("release", "check", "--repo", str(d.repo))
    ok("release check: git tags and the ledger agree")
    report = d.json("ledger", "verify")
    if not report.get("ok"):
        raise Failed(f"ledger verify failed: {report.get('first_failure')}")
    ok(f"ledger verify: {report['size']} entries, root {report['root_hash']}")


def main() -> int:
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="starter-release-demo-"))
    try:
        d = Demo(tmp)
        prepare(d)
        version = bump(d)
        record(d)
        tag(d, version)
        publish(d, version)
        finish(d, version)
    except (Failed, IndexNotStartedError) as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ok(f"release demo passed in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
