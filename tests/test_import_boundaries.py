"""The import boundaries: every package is checked, and the checks catch a forbidden import.

import-linter (``lint-imports``, run by ``just lint``) enforces the contracts in
``[tool.importlinter]`` of ``pyproject.toml``. These tests make sure the checks cannot go quiet:
every import package in the repository is a root package of import-linter, a mypy package and a
wheel package (so a moved or new folder cannot escape them), lint-imports analyses every module of
them, and on a temporary copy of the sources each kind of forbidden import makes it fail, naming
the broken contract.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))

#: Folders that hold no application package: tests, benchmarks, tool and build output.
_NOT_SOURCE = {"tests", "bench", "venv", "build", "dist", "node_modules", "__pycache__"}

LAYERS = "Layers: contracts <- events <- ledger <- {backend, cli}"
INDEPENDENCE = "The backend and the CLI never import each other"
CONTRACTS_PURE = "Contracts import nothing of the application"
CONTRACTS_LIGHT = "Contracts import no server, database, CLI or cloud library"
CONTRACTS_IMPORTERS = "Only the listed packages import contracts"
CONTRACT_NAMES = {LAYERS, INDEPENDENCE, CONTRACTS_PURE, CONTRACTS_LIGHT, CONTRACTS_IMPORTERS}


@dataclass(frozen=True)
class Package:
    """A top-level import package found in the repository."""

    name: str
    #: The package's folder, e.g. ROOT/events/starter_events.
    path: Path

    @property
    def source_folder(self) -> Path:
        return self.path.parent


def _skipped(folder: Path) -> bool:
    name = folder.name
    return name in _NOT_SOURCE or name.startswith(".") or name.endswith(".egg-info")


def _packages(root: Path = ROOT) -> list[Package]:
    """Every folder with an ``__init__.py`` whose parent has none, outside tests/bench/build."""
    found: list[Package] = []
    pending = [root]
    while pending:
        folder = pending.pop()
        for child in sorted(folder.iterdir()):
            if not child.is_dir() or _skipped(child):
                continue
            if (child / "__init__.py").is_file():
                found.append(Package(child.name, child))
            else:
                pending.append(child)
    return sorted(found, key=lambda p: p.name)


def _pyproject(path: Path = ROOT / "pyproject.toml") -> dict[str, Any]:
    return tomllib.loads(path.read_text(encoding="utf-8"))


def _module_names(package: Package) -> set[str]:
    """The dotted module names of the package's .py files (what a complete scan must find)."""
    names = set()
    for file in package.path.rglob("*.py"):
        parts = file.relative_to(package.source_folder).with_suffix("").parts
        names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _analysed_count(output: str) -> int:
    match = re.search(r"^Analyzed (\d+) files, (\d+) dependencies\.$", output, re.MULTILINE)
    assert match, output
    return int(match.group(1))


def _broken(output: str) -> set[str]:
    return set(re.findall(r"^(.+) BROKEN$", output, re.MULTILINE))


PACKAGES = _packages()


def test_the_walk_finds_the_application_packages() -> None:
    """The scan below is not vacuous: it finds the five packages in their folders."""
    found = {p.name: p.path.relative_to(ROOT).as_posix() for p in PACKAGES}
    assert {
        "starter_contracts": "contracts/starter_contracts",
        "starter_events": "events/starter_events",
        "starter_ledger": "ledger/starter_ledger",
        "starter_cli": "cli/starter_cli",
        "starter_backend": "backend/starter_backend",
    }.items() <= found.items()
    assert len(set(found)) == len(PACKAGES), f"two folders hold the same package: {found}"


def test_the_walk_finds_packages_anywhere(tmp_path: Path) -> None:
    """A package in a new or nested folder is found; only tests, benchmarks, dot-folders and
    build output are left out."""
    for folder in [
        "contracts/starter_contracts",
        "tools/deep/starter_tools",
        "starter_flat",
        "tests/helpers_pkg",
        "bench/bench_pkg",
        ".venv/lib/site_pkg",
        "build/lib/built_pkg",
        "x.egg-info/egg_pkg",
    ]:
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "__init__.py").touch()
    (tmp_path / "contracts/starter_contracts/sub").mkdir()
    (tmp_path / "contracts/starter_contracts/sub/__init__.py").touch()
    found = {p.name: p.path.relative_to(tmp_path).as_posix() for p in _packages(tmp_path)}
    assert found == {
        "starter_contracts": "contracts/starter_contracts",
        "starter_flat": "starter_flat",
        "starter_tools": "tools/deep/starter_tools",
    }


def test_every_package_is_an_import_linter_root() -> None:
    """A new or moved package is checked by lint-imports: it must be a root package."""
    root_packages = _pyproject()["tool"]["importlinter"]["root_packages"]
    assert sorted(root_packages) == sorted(p.name for p in PACKAGES), (
        "[tool.importlinter] root_packages must list exactly the repository's import packages"
    )


def test_every_package_is_type_checked() -> None:
    """A new or moved package is type-checked: mypy's packages and mypy_path include it."""
    mypy = _pyproject()["tool"]["mypy"]
    assert sorted(mypy["packages"]) == sorted(p.name for p in PACKAGES)
    search_path = mypy["mypy_path"].split(":")
    for package in PACKAGES:
        folder = package.source_folder.relative_to(ROOT).as_posix()
        assert folder in search_path, f"{folder} (holding {package.name}) is not in mypy_path"


def test_every_package_is_in_a_wheel() -> None:
    """Each package ships in the wheel of the nearest pyproject.toml, and the wheels ship no
    folder that is not a package found here."""
    shipped: dict[Path, set[str]] = {}
    for package in PACKAGES:
        project = package.source_folder
        while not (project / "pyproject.toml").is_file():
            assert project != ROOT, f"no pyproject.toml above {package.path}"
            project = project.parent
        shipped.setdefault(project, set()).add(package.path.relative_to(project).as_posix())
    for project, expected in shipped.items():
        wheel = _pyproject(project / "pyproject.toml")["tool"]["hatch"]["build"]["targets"]
        assert sorted(wheel["wheel"]["packages"]) == sorted(expected), project / "pyproject.toml"


def test_import_linter_scans_the_repository_folders() -> None:
    """lint-imports finds each package in its repository folder (the editable install), not a
    stale copy elsewhere on sys.path."""
    for package in PACKAGES:
        spec = importlib.util.find_spec(package.name)
        assert spec is not None, f"{package.name} is not installed (run `just setup`)"
        locations = [Path(p).resolve() for p in spec.submodule_search_locations or []]
        assert locations == [package.path.resolve()], f"{package.name} is imported from {locations}"


@pytest.fixture(scope="module")
def repo_lint() -> subprocess.CompletedProcess[str]:
    """``lint-imports`` run on the repository, as ``just lint`` runs it (without the cache)."""
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache", "--no-logo"],
        capture_output=True,
        cwd=ROOT,
        text=True,
        timeout=120,
    )


def test_lint_imports_analyses_every_module(repo_lint: subprocess.CompletedProcess[str]) -> None:
    """The check is not vacuous: the graph holds every module of every package, and
    lint-imports keeps every contract of pyproject.toml over that graph."""
    config = _pyproject()["tool"]["importlinter"]
    graph = grimp.build_graph(
        *config["root_packages"],
        include_external_packages=config.get("include_external_packages", False),
        cache_dir=None,
    )
    expected = set().union(*(_module_names(p) for p in PACKAGES))
    internal = {m for m in graph.modules if m.split(".")[0] in config["root_packages"]}
    assert internal == expected
    assert len(expected) > 50, "suspiciously few modules"

    output = repo_lint.stdout
    assert repo_lint.returncode == 0, output + repo_lint.stderr
    assert _analysed_count(output) == len(graph.modules)
    names = [contract["name"] for contract in config["contracts"]]
    assert set(names) == CONTRACT_NAMES, "a contract was added, removed or renamed: update tests"
    for name in names:
        assert f"{name} KEPT" in output
    assert f"Contracts: {len(names)} kept, 0 broken." in output


# -- the checks fail when a forbidden import is added -----------------------------------------


def _copy_sources(dest: Path) -> dict[str, str]:
    """Copy every package and pyproject.toml to ``dest``; the environment to lint the copy."""
    for package in PACKAGES:
        shutil.copytree(
            package.path,
            dest / package.path.relative_to(ROOT),
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    shutil.copy2(ROOT / "pyproject.toml", dest / "pyproject.toml")
    folders = dict.fromkeys(str(dest / p.source_folder.relative_to(ROOT)) for p in PACKAGES)
    # PYTHONPATH comes before site-packages, where the editable install points at the repository.
    return {**os.environ, "PYTHONPATH": os.pathsep.join(folders)}


def _lint(dest: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LINT_IMPORTS, "--config", str(dest / "pyproject.toml"), "--no-cache", "--no-logo"],
        capture_output=True,
        cwd=dest,
        env=env,
        text=True,
        timeout=120,
    )


def _add_probe(package_folder: Path, target: str) -> str:
    """Add a module that imports ``target`` lazily, inside a function; return its name."""
    (package_folder / "_boundary_probe.py").write_text(
        f"def probe() -> None:\n    import {target}  # the forbidden import\n", encoding="utf-8"
    )
    return f"{package_folder.name}._boundary_probe"


def test_unmodified_copy_passes(
    tmp_path: Path, repo_lint: subprocess.CompletedProcess[str]
) -> None:
    """The copy is linted, not the installed packages (a sentinel module is counted), and
    keeps every contract: the failures below come from the added imports alone."""
    env = _copy_sources(tmp_path)
    (tmp_path / "cli" / "starter_cli" / "_boundary_sentinel.py").write_text(
        "import starter_ledger  # allowed: the CLI sits above the ledger\n", encoding="utf-8"
    )
    proc = _lint(tmp_path, env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"Contracts: {len(CONTRACT_NAMES)} kept, 0 broken." in proc.stdout
    assert _analysed_count(proc.stdout) == _analysed_count(repo_lint.stdout) + 1


@pytest.mark.parametrize(
    ("importer", "target", "broken"),
    [
        pytest.param(importer, target, broken, id=f"{importer}-imports-{target}")
        for importer, target, broken in [
            ("starter_contracts", "starter_ledger", {LAYERS, CONTRACTS_PURE}),
            ("starter_events", "starter_cli", {LAYERS}),
            ("starter_ledger", "starter_backend", {LAYERS}),
            ("starter_backend", "starter_cli", {LAYERS, INDEPENDENCE}),
            ("starter_cli", "starter_backend", {LAYERS, INDEPENDENCE}),
            ("starter_contracts", "fastapi", {CONTRACTS_LIGHT}),
            # imported by no package yet, so absent from the graph until the forbidden import
            ("starter_contracts", "httpx", {CONTRACTS_LIGHT}),
        ]
    ],
)
def test_forbidden_import_fails_the_check(
    importer: str, target: str, broken: set[str], tmp_path: Path
) -> None:
    """Adding a forbidden import, even a lazy one inside a function, makes lint-imports fail,
    naming the broken contracts and the offending import (in a module only the copy has).

    More contracts may break through indirect chains (contracts -> ledger -> sqlalchemy also
    breaks the "no heavy library" rule); the ones listed must.
    """
    env = _copy_sources(tmp_path)
    package = next(p for p in PACKAGES if p.name == importer)
    probe = _add_probe(tmp_path / package.path.relative_to(ROOT), target)
    proc = _lint(tmp_path, env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert broken <= _broken(proc.stdout), proc.stdout
    assert f"{probe} -> {target} (l.2)" in proc.stdout


def test_unlisted_package_importing_contracts_fails_the_check(tmp_path: Path) -> None:
    """Only the listed packages import contracts: a new root package that imports them fails."""
    env = _copy_sources(tmp_path)
    probe = tmp_path / "probe" / "starter_probe"
    probe.mkdir(parents=True)
    (probe / "__init__.py").write_text("import starter_contracts\n", encoding="utf-8")
    config = tmp_path / "pyproject.toml"
    text = config.read_text(encoding="utf-8")
    assert "root_packages = [" in text
    config.write_text(
        text.replace("root_packages = [", 'root_packages = ["starter_probe", ', 1), encoding="utf-8"
    )
    env["PYTHONPATH"] += os.pathsep + str(probe.parent)
    proc = _lint(tmp_path, env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert _broken(proc.stdout) == {CONTRACTS_IMPORTERS}, proc.stdout
    assert "starter_probe -> starter_contracts (l.1)" in proc.stdout
