"""SBOMs: reproducible CycloneDX JSON, schema-validated, stored by digest, diffed, recorded.

Generating needs cyclonedx-bom but no network. To stay fast, environments are small hand-made
virtual environments (core metadata only) built once per module; the schema check of a real SBOM
of the project's own environment takes about ten seconds and is not repeated here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from conftest import CLI, ORIGIN, initialised_ledger_env, make_signer
from starter_events import validate_payload
from starter_ledger import Ledger
from starter_ledger.clock import FixedClock
from starter_ledger.errors import InputRejectedError
from starter_ledger.sbom import (
    SbomError,
    SbomStore,
    diff_components,
    environment_sbom,
    parse_sbom,
    record_sbom,
    recorded_sboms,
    wheel_sbom,
)
from starter_ledger.storage import MemoryStore

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def make_venv(folder: Path, dists: dict[str, str]) -> str:
    """A virtual environment holding only the core metadata of ``dists`` (name -> version)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    site = next((folder / "lib").glob("python*/site-packages"))
    for name, version in dists.items():
        info = site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nLicense-Expression: MIT\n"
        )
    return str(folder / "bin" / "python")


@pytest.fixture(scope="module")
def envs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two small environments (one upgraded, one added, one removed) and their SBOMs, the
    first generated twice."""
    root = tmp_path_factory.mktemp("envs")
    old = make_venv(root / "old", {"alpha": "1.0", "beta": "2.0", "gamma": "0.1"})
    new = make_venv(root / "new", {"alpha": "1.1", "beta": "2.0", "delta": "5"})
    return {
        "old": environment_sbom(old),
        "again": environment_sbom(old),
        "new": environment_sbom(new),
        "root": root,
    }


def test_the_same_environment_gives_the_same_bytes(envs: dict[str, Any]) -> None:
    """Generation is reproducible: no serial number, no timestamp; same inputs, same bytes."""
    assert envs["old"].data == envs["again"].data
    assert envs["old"].sha256 == hashlib.sha256(envs["old"].data).hexdigest()
    doc = json.loads(envs["old"].data)
    assert "serialNumber" not in doc
    assert "timestamp" not in doc.get("metadata", {})


def test_a_generated_sbom_is_valid_cyclonedx(envs: dict[str, Any]) -> None:
    """The generated document passes the CycloneDX JSON schema and lists every distribution."""
    sbom = parse_sbom(envs["old"].data, "test")  # validates against the schema
    assert sbom.spec_version == "1.6"
    assert sbom.count == 3
    assert sorted(v for _, v in sbom.components.values()) == ["0.1", "1.0", "2.0"]


def test_the_diff_lists_added_removed_and_changed(envs: dict[str, Any]) -> None:
    """The component diff between two SBOMs names what was added, removed and upgraded."""
    diff = diff_components(envs["old"].components, envs["new"].components)
    assert [(c.name, c.version) for c in diff.added] == [("delta", "5")]
    assert [(c.name, c.version) for c in diff.removed] == [("gamma", "0.1")]
    assert [(c.name, c.old, c.new) for c in diff.changed] == [("alpha", "1.0", "1.1")]


def _doc(components: list[dict[str, Any]]) -> bytes:
    return json.dumps(
        {"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1, "components": components}
    ).encode()


def test_diff_of_hand_made_sboms_is_sorted_and_keyed_by_purl() -> None:
    """Components match by purl (any version) or name; nested ones count; lists are sorted."""
    old = parse_sbom(
        _doc(
            [
                {"type": "library", "name": "Zeta", "version": "1", "purl": "pkg:pypi/zeta@1"},
                {"type": "library", "name": "b", "version": "1"},
                {
                    "type": "library",
                    "name": "outer",
                    "version": "1",
                    "components": [{"type": "library", "name": "inner", "version": "1"}],
                },
            ]
        ),
        "old",
    )
    new = parse_sbom(
        _doc(
            [
                {"type": "library", "name": "zeta", "version": "2", "purl": "pkg:pypi/zeta@2?x=y"},
                {"type": "library", "name": "a", "version": "3"},
                {"type": "library", "name": "C", "version": "1"},
                {"type": "library", "name": "outer", "version": "1"},
            ]
        ),
        "new",
    )
    assert old.count == 4
    diff = diff_components(old.components, new.components)
    assert [c.name for c in diff.added] == ["a", "C"]
    assert [c.name for c in diff.removed] == ["b", "inner"]
    assert [(c.name, c.old, c.new) for c in diff.changed] == [("zeta", "1", "2")]
    assert diff_components(new.components, new.components).model_dump() == {
        "added": [],
        "removed": [],
        "changed": [],
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"bomFormat": "CycloneDX", "specVersion": "1.6", "compo', "is not JSON"),
        (b'{"hello": "world"}', "not a CycloneDX JSON document"),
        (b'{"bomFormat": "CycloneDX", "specVersion": "9.9"}', "specVersion"),
        (_doc([{"type": "libraryx", "name": "a"}]), "not valid CycloneDX 1.6"),
        (_doc([{"type": "library"}]), "not valid CycloneDX 1.6"),
    ],
    ids=["truncated", "not-cyclonedx", "spec-version", "bad-enum", "no-name"],
)
def test_a_corrupt_sbom_fails_with_a_clear_error(data: bytes, message: str) -> None:
    """A corrupt or schema-invalid SBOM is an input error naming the file and the problem."""
    with pytest.raises(InputRejectedError, match=message) as info:
        parse_sbom(data, "some/file.cdx.json")
    assert "some/file.cdx.json" in info.value.message


def test_the_store_is_content_addressed(envs: dict[str, Any], tmp_path: Path) -> None:
    """An SBOM is stored once as <sha256>.cdx.json (0644) and read back only if intact."""
    store = SbomStore(tmp_path / "sboms")
    path = store.put(envs["old"])
    assert path.name == f"{envs['old'].sha256}.cdx.json"
    assert path.stat().st_mode & 0o777 == 0o644
    assert path.read_bytes() == envs["old"].data
    assert store.put(envs["again"]) == path
    assert store.get(envs["old"].sha256).components == envs["old"].components
    path.write_bytes(path.read_bytes().replace(b"alpha", b"alphb"))
    with pytest.raises(SbomError, match="corrupt"):
        store.get(envs["old"].sha256)
    assert store.put(envs["old"]) == path  # an altered copy is replaced
    assert path.read_bytes() == envs["old"].data
    with pytest.raises(SbomError, match="not in the store"):
        store.get("0" * 64)


def test_recording_diffs_against_the_previous_sbom_of_the_subject(
    envs: dict[str, Any], tmp_path: Path
) -> None:
    """sbom.recorded carries digest, version, count and the diff against the previous SBOM of
    the same subject (the first lists everything as added)."""
    led = Ledger(MemoryStore(), clock=FixedClock(NOW))
    signer = make_signer("genesis")
    led.init(ORIGIN, signer, "tester")
    store = SbomStore(tmp_path / "sboms")
    first = record_sbom(led, store, envs["old"], subject="environment", signer=signer, actor="t")
    assert len(first.payload.diff.added) == 3
    assert first.previous is None
    wheel = record_sbom(
        led, store, envs["new"], subject="x-1-py3-none-any.whl", signer=signer, actor="t"
    )
    assert len(wheel.payload.diff.added) == 3  # a different subject: not diffed against env
    second = record_sbom(led, store, envs["new"], subject="environment", signer=signer, actor="t")
    assert second.previous is not None
    assert second.previous.seq == 1
    assert [c.name for c in second.payload.diff.changed] == ["alpha"]
    recorded = recorded_sboms(led)
    assert [r.seq for r in recorded] == [1, 2, 3]
    dumped = recorded[-1].payload.model_dump(mode="json")
    assert dumped["sha256"] == envs["new"].sha256
    assert dumped["components"] == 3
    assert validate_payload("sbom.recorded", 1, dumped).model_dump(mode="json") == dumped


def _wheel(folder: Path, requires: list[str], name: str = "demo_pkg-1.0-py3-none-any.whl") -> Path:
    path = folder / name
    meta = "Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.0\nLicense-Expression: MIT\n"
    meta += "".join(f"Requires-Dist: {r}\n" for r in requires)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("demo_pkg-1.0.dist-info/METADATA", meta)
        zf.writestr("demo_pkg/__init__.py", "")
    return path


def test_a_wheel_sbom_holds_the_wheel_and_its_resolved_requirements(tmp_path: Path) -> None:
    """A wheel is described with its Requires-Dist closure as installed here, markers applied."""
    wheel = _wheel(tmp_path, ["rfc8785>=0.1", 'pywin32; sys_platform == "never"'])
    sbom = wheel_sbom(wheel)
    names = sorted(n for n, _ in sbom.components.values())
    assert names == ["demo-pkg", "rfc8785"]
    assert wheel_sbom(wheel).data == sbom.data  # reproducible too


def test_a_wheel_whose_requirements_are_not_installed_is_refused(tmp_path: Path) -> None:
    """An SBOM that would miss a component is refused, naming the requirement."""
    with pytest.raises(InputRejectedError, match="no-such-package-xyz"):
        wheel_sbom(_wheel(tmp_path, ["no-such-package-xyz>=1"]))
    with pytest.raises(InputRejectedError, match="installed: "):
        wheel_sbom(_wheel(tmp_path, ["rfc8785>=999"]))


def test_a_file_that_is_not_a_wheel_is_refused(tmp_path: Path) -> None:
    """A corrupt wheel is an input error naming the file."""
    bad = tmp_path / "demo_pkg-1.0-py3-none-any.whl"
    bad.write_bytes(b"not a zip")
    with pytest.raises(InputRejectedError, match="cannot be read"):
        wheel_sbom(bad)


# -- the CLI end to end ------------------------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A CLI environment with an initialised SQLite ledger and its signing key."""
    return initialised_ledger_env(tmp_path, NOW)


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )


def test_cli_records_diffs_and_verifies(
    env: dict[str, str], envs: dict[str, Any], tmp_path: Path
) -> None:
    """sbom record stores the file beside the ledger; diff prints the changes; verify re-hashes
    and fails (exit 1) on an altered file."""
    files = {}
    for name in ("old", "new"):
        files[name] = tmp_path / f"{name}.cdx.json"
        files[name].write_bytes(envs[name].data)
        out = cli(env, "sbom", "record", "--from", str(files[name]), "--json")
        assert out.returncode == 0, out.stderr
    stored = tmp_path / "ledger" / "sboms" / f"{envs['new'].sha256}.cdx.json"
    assert stored.read_bytes() == envs["new"].data
    diff = cli(env, "sbom", "diff", "--json")
    assert diff.returncode == 0, diff.stderr
    assert [c["name"] for c in json.loads(diff.stdout)["changed"]] == ["alpha"]
    explicit = cli(
        env, "sbom", "diff", "--from", envs["new"].sha256[:8], "--to", envs["old"].sha256, "--json"
    )
    assert explicit.returncode == 0, explicit.stderr
    assert [c["name"] for c in json.loads(explicit.stdout)["added"]] == ["gamma"]
    text = cli(env, "sbom", "diff")
    assert "changed  alpha 1.0 -> 1.1" in text.stdout
    assert cli(env, "sbom", "verify").returncode == 0
    stored.write_bytes(b"{}")
    failed = cli(env, "sbom", "verify")
    assert failed.returncode == 1
    assert "corrupt" in failed.stdout


def test_cli_bad_sbom_leaves_the_ledger_unchanged(env: dict[str, str], tmp_path: Path) -> None:
    """A corrupt SBOM file: one error naming it, exit 3, ledger byte-identical, nothing stored."""
    db = tmp_path / "ledger" / "ledger.db"
    before = db.read_bytes()
    bad = tmp_path / "bad.cdx.json"
    bad.write_bytes(_doc([{"type": "libraryx", "name": "a"}]))
    out = cli(env, "sbom", "record", "--from", str(bad))
    assert out.returncode == 3
    assert out.stderr.startswith("error: SBOM ")
    assert str(bad) in out.stderr
    assert db.read_bytes() == before
    assert not (tmp_path / "ledger" / "sboms").exists()
