"""The `starter-contracts` package: import-safe, side-effect free, self-contained, one source of
the settings both sides read.

Importing any contracts module must read no environment variable, open no file or socket, log
nothing, and pull in no database, web, CLI or cloud library: services import it at start-up and
tools import it in odd places (CI, docs builds). Its wheel builds alone, with its own version and
``py.typed``. The CLI's environment variables are exactly the fields of ``CliSettings``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT

#: Libraries the contracts must never import (directly or through a dependency).
FORBIDDEN = [
    "sqlmodel",
    "sqlalchemy",
    "fastapi",
    "starlette",
    "uvicorn",
    "typer",
    "click",
    "hvac",
    "boto3",
    "botocore",
    "azure",
    "redis",
    "httpx",
    "psycopg",
    "starter_events",
    "starter_ledger",
    "starter_cli",
    "starter_backend",
]

# Runs in a clean interpreter: records environment reads, opens, sockets and log records made
# while every contracts module is imported, then reports them as JSON on stdout.
_PROBE = r"""
import json, logging, os, pkgutil, sys

events = {"env": [], "open": [], "socket": [], "log": []}
recording = False

#: Read by pydantic itself whenever any model class is created (its plugin switch), not by the
#: contracts; every other variable counts.
PYDANTIC_OWN = {"PYDANTIC_DISABLE_PLUGINS"}

class Env(type(os.environ)):
    def _seen(self, key):
        if key not in PYDANTIC_OWN:
            events["env"].append(key)
    def __getitem__(self, key):
        self._seen(key)
        return super().__getitem__(key)
    def __contains__(self, key):
        self._seen(key)
        return super().__contains__(key)
    def get(self, key, default=None):
        self._seen(key)
        return super().get(key, default)


def _is_code(path):
    path = str(path)
    return path.endswith((".py", ".pyc", ".so", ".pth")) or "__pycache__" in path

def hook(event, args):
    # An int is a descriptor already opened (and recorded) by path, e.g. when bytecode is written.
    if event == "open" and args and isinstance(args[0], int):
        return
    if event == "open" and args and not _is_code(args[0]) and not os.path.isdir(str(args[0])):
        events["open"].append(str(args[0]))
    elif event.startswith("socket."):
        events["socket"].append(event)

class Catch(logging.Handler):
    def emit(self, record):
        events["log"].append(record.getMessage())

# pydantic's own one-time start-up (its plugin discovery scans installed distributions and reads
# PYDANTIC_DISABLE_PLUGINS) happens on first use by anyone; run it before recording, so what is
# recorded is what the contracts themselves do.
import enum, typing
import pydantic, pydantic_settings
class _Warm(pydantic.BaseModel):
    x: int = 0
class _WarmSettings(pydantic_settings.BaseSettings):
    pass

os.environ = Env(os.environ._data, os.environ.encodekey, os.environ.decodekey,
                 os.environ.encodevalue, os.environ.decodevalue)
logging.getLogger().addHandler(Catch(level=logging.DEBUG))
logging.getLogger().setLevel(logging.DEBUG)
sys.addaudithook(hook)

import starter_contracts
names = ["starter_contracts"]
for info in pkgutil.walk_packages(starter_contracts.__path__, "starter_contracts."):
    __import__(info.name)
    names.append(info.name)
for name in starter_contracts.__all__:
    getattr(starter_contracts, name)
sys.stdout.write(json.dumps({
    "modules": names,
    "events": events,
    "loaded": sorted({m.split(".")[0] for m in sys.modules}),
}))
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    cwd = tmp_path_factory.mktemp("contracts-probe")
    proc = subprocess.run(
        [sys.executable, "-I", "-B", "-c", _PROBE],
        capture_output=True,
        cwd=cwd,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "STARTER_LEDGER_URL": "sqlite:////nonexistent/x.db"},
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def test_every_contracts_module_is_imported_by_the_probe(probe: dict[str, object]) -> None:
    """The probe really imports every module of the package (it cannot pass by scanning less)."""
    modules = probe["modules"]
    assert isinstance(modules, list)
    on_disk = {
        "starter_contracts" + ("" if p.stem == "__init__" else f".{p.stem}")
        for p in (ROOT / "contracts" / "starter_contracts").glob("*.py")
    }
    assert set(modules) == on_disk


def test_importing_the_contracts_reads_no_environment_and_opens_nothing(
    probe: dict[str, object],
) -> None:
    """Importing every contracts module (and reaching every public name) reads no environment
    variable, opens no file or socket and logs nothing."""
    assert probe["events"] == {"env": [], "open": [], "socket": [], "log": []}


def test_importing_the_contracts_loads_no_application_or_heavy_library(
    probe: dict[str, object],
) -> None:
    """No database, web framework, CLI toolkit, cloud SDK or other Starter package is loaded."""
    loaded = probe["loaded"]
    assert isinstance(loaded, list)
    assert sorted(set(loaded) & set(FORBIDDEN)) == []


def test_settings_read_the_environment_only_when_made(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings are read when an instance is made: STARTER_ variables, the CLI's duration form,
    and a clear error for a bad value."""
    from pydantic import ValidationError

    from starter_contracts.settings import BackendSettings, CliSettings

    monkeypatch.setenv("STARTER_LEDGER_URL", "sqlite:////srv/l.db")
    monkeypatch.setenv("STARTER_JWKS_MAX_AGE", "2h")
    assert BackendSettings().ledger_url == "sqlite:////srv/l.db"
    assert BackendSettings().jwks_max_age == 7200
    assert CliSettings().jwks_max_age == 7200
    monkeypatch.setenv("STARTER_POLL_INTERVAL", "10")
    with pytest.raises(ValidationError, match="at most half of STARTER_FRESHNESS_BOUND"):
        BackendSettings()


def test_cli_environment_is_the_cli_settings_model() -> None:
    """Every STARTER_ variable starter-cli reads (through an option or directly) is a field of
    CliSettings and the other way round, with the same default where both have one."""
    import re

    import click
    import typer.main

    from starter_cli.app import app
    from starter_contracts.settings import CliSettings

    found: dict[str, object] = {}

    def walk(command: click.Command) -> None:
        for param in command.params:
            for var in [param.envvar] if isinstance(param.envvar, str) else param.envvar or []:
                if var.startswith("STARTER_"):
                    found.setdefault(var, param.default)
        for sub in getattr(command, "commands", {}).values():
            walk(sub)

    walk(typer.main.get_command(app))
    for source in (ROOT / "cli" / "starter_cli").glob("*.py"):
        for var in re.findall(r"\bSTARTER_[A-Z][A-Z_]*[A-Z]\b", source.read_text()):
            found.setdefault(var, None)
    fields = {f"STARTER_{name.upper()}": field for name, field in CliSettings.model_fields.items()}
    cli_only = set(found) - set(fields)
    settings_only = set(fields) - set(found)
    assert (cli_only, settings_only) == (set(), set())
    for var, default in found.items():
        if default is not None and fields[var].default is not None:
            assert default == fields[var].default, var


def test_the_contracts_wheel_builds_alone_with_py_typed(tmp_path: Path) -> None:
    """`starter-contracts` builds as its own wheel, with its own version, py.typed and no
    application package inside."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT / "contracts"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if "No module named 'hatchling'" in proc.stderr or (
        "hatchling" in proc.stderr and proc.returncode
    ):
        pytest.fail("hatchling is needed to build the wheel: pip install hatchling\n" + proc.stderr)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("starter_contracts-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "starter_contracts/py.typed" in names
    assert {n.split("/")[0] for n in names if not n.startswith("starter_contracts-")} == {
        "starter_contracts"
    }
    meta = next(n for n in names if n.endswith("METADATA"))
    text = zipfile.ZipFile(wheel).read(meta).decode()
    requires = sorted(
        line.split(":", 1)[1].strip().split(">")[0].split("<")[0].split("=")[0].strip().lower()
        for line in text.splitlines()
        if line.startswith("Requires-Dist:")
    )
    assert requires == ["pydantic", "pydantic-settings"]
