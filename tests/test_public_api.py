"""The packages' public surface and import hygiene.

``__all__`` is the contract of each package (and of each module that declares one): it names only
what exists and is kept in ruff's RUF022 order. Only the ``starter_*`` packages are importable (no
bare ``cli``/``ledger``/... top-level modules leak from the source layout), and ``starter-cli
--help`` stays light: no database or web framework is imported for it.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

PACKAGES = [
    "starter_contracts",
    "starter_events",
    "starter_ledger",
    "starter_cli",
    "starter_backend",
]


def _modules() -> list[str]:
    names = []
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        names.append(package_name)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
            if info.name.endswith("__main__"):
                continue  # running it is the CLI, not an import
            names.append(info.name)
    return names


def _natural(name: str) -> list[object]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _ruf022_key(name: str) -> tuple[int, list[object]]:
    """ruff RUF022 ("isort-style") order: CONSTANTS, then Classes, then the rest, naturally."""
    if len(name) > 1 and name.isupper():
        kind = 0
    elif name[:1].isupper():
        kind = 1
    else:
        kind = 2
    return kind, _natural(name)


@pytest.mark.parametrize("package_name", PACKAGES)
def test_package_declares_all(package_name: str) -> None:
    """Every package declares its public surface explicitly in __all__."""
    package = importlib.import_module(package_name)
    assert isinstance(package.__all__, list)
    assert package.__all__, f"{package_name}.__all__ is empty"


@pytest.mark.parametrize("module_name", _modules())
def test_all_names_exist_and_are_sorted(module_name: str) -> None:
    """Each __all__ names only attributes that exist, once each, in ruff's RUF022 order."""
    module: ModuleType = importlib.import_module(module_name)
    exported = getattr(module, "__all__", None)
    if exported is None:
        assert "." in module_name, f"package {module_name} has no __all__"
        return
    missing = [name for name in exported if not hasattr(module, name)]
    assert missing == [], f"{module_name}.__all__ names missing attributes {missing}"
    assert len(set(exported)) == len(exported), f"{module_name}.__all__ has duplicates"
    assert list(exported) == sorted(exported, key=_ruf022_key), f"{module_name}.__all__ order"


def test_public_names_are_importable_from_the_package() -> None:
    """`from starter_ledger import *` and friends give exactly the declared names."""
    for package_name in PACKAGES:
        namespace: dict[str, object] = {}
        exec(f"from {package_name} import *", namespace)  # noqa: S102 - fixed package names
        namespace.pop("__builtins__", None)
        assert sorted(namespace) == sorted(importlib.import_module(package_name).__all__)


@pytest.mark.parametrize("name", ["cli", "backend", "ledger", "events", "contracts"])
def test_no_bare_top_level_modules(name: str, tmp_path: Path) -> None:
    """Source folders are not importable as bare modules: only the starter_* packages exist."""
    proc = subprocess.run(
        [sys.executable, "-c", f"import {name}"],
        capture_output=True,
        cwd=tmp_path,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0, f"'import {name}' succeeded from a neutral folder"
    assert "ModuleNotFoundError" in proc.stderr


_HEAVY = ["sqlalchemy", "sqlmodel", "fastapi", "starlette", "uvicorn"]

_PROBE = """
import json, sys
from starter_cli.app import main
try:
    main(sys.argv[1:])
except SystemExit as e:
    code = e.code
else:
    code = 0
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})
sys.stderr.write("PROBE " + json.dumps({{"code": code, "heavy": heavy}}) + "\\n")
"""


@pytest.mark.parametrize(
    "args",
    [["--help"], ["ledger", "--help"], ["ledger", "append", "--help"], ["ledger", "verify", "-h"]],
    ids=" ".join,
)
def test_help_does_not_import_heavy_dependencies(args: list[str], tmp_path: Path) -> None:
    """`starter-cli --help` stays fast: it imports no database layer and no web framework."""
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE.format(heavy=_HEAVY), *args],
        capture_output=True,
        cwd=tmp_path,
        text=True,
        timeout=60,
    )
    lines = [line for line in proc.stderr.splitlines() if line.startswith("PROBE ")]
    assert lines, proc.stderr
    probe = json.loads(lines[-1][len("PROBE ") :])
    assert probe["code"] in (0, None), proc.stderr
    assert "Usage:" in proc.stdout
    assert probe["heavy"] == []


def test_contracts_import_is_light(tmp_path: Path) -> None:
    """Importing the contracts package pulls in no database, web or CLI library."""
    code = (
        "import sys, json; import starter_contracts; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{[*_HEAVY, 'typer', 'click', 'starter_ledger', 'starter_cli']!r})))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, cwd=tmp_path, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []
