"""Generating CycloneDX SBOMs with ``cyclonedx-bom``, of an environment or of a built wheel.

For: ``environment_sbom`` (``cyclonedx-py environment --output-reproducible``: no serial number,
no timestamp unless ``SOURCE_DATE_EPOCH`` gives one, so the same environment gives the same bytes)
and ``wheel_sbom``. A wheel is described by a throw-away virtual environment (``python -m venv
--without-pip``, no network, nothing installed) holding only core metadata: the wheel's own
``METADATA`` taken from the archive, and the ``METADATA`` (and ``direct_url.json``) of every
distribution its ``Requires-Dist`` closure resolves to in *this* environment (markers evaluated,
extras followed). ``cyclonedx-py environment`` then describes exactly that set, with the same
component form as an environment SBOM. ``cyclonedx-py requirements`` was not chosen: it sees
unpinned specifiers, not versions, and no licences. A requirement this environment does not
satisfy is an error: an SBOM that silently misses a component is worse than none.
Not for: parsing (``_sbom_document``) or storing and recording (``sbom``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from email.parser import BytesParser
from importlib import metadata
from pathlib import Path

from starter_ledger._sbom_document import (
    DEFAULT_SPEC_VERSION,
    JSON_SPEC_VERSIONS,
    Sbom,
    SbomError,
    parse_sbom,
)
from starter_ledger.errors import InputRejectedError

#: How long one cyclonedx-py or venv run may take, in seconds.
_TIMEOUT = 600


def _cyclonedx(python: str, spec_version: str) -> bytes:
    if spec_version not in JSON_SPEC_VERSIONS:
        raise InputRejectedError(
            f"CycloneDX spec version {spec_version!r} has no JSON form",
            hint=f"use one of {', '.join(JSON_SPEC_VERSIONS)}",
        )
    cmd = [sys.executable, "-m", "cyclonedx_py", "environment", "--output-reproducible"]
    cmd += ["--no-validate", "--sv", spec_version, "--of", "JSON", "-o", "-", python]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SbomError(f"cannot run cyclonedx-py: {e}", hint="pip install cyclonedx-bom") from None
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise SbomError(
            f"cyclonedx-py failed for {python} (exit {proc.returncode}): {tail[0][:300]}",
            hint="re-run with 'cyclonedx-py environment -v' to see why",
        )
    return proc.stdout


def environment_sbom(python: str | None = None, spec_version: str = DEFAULT_SPEC_VERSION) -> Sbom:
    """The validated SBOM of the environment of ``python`` (default: this interpreter's)."""
    data = _cyclonedx(python or sys.executable, spec_version)
    return parse_sbom(data, f"of {python or 'this environment'}")


def _wheel_metadata(wheel: Path) -> bytes:
    """The ``METADATA`` of a wheel file; refuses files that are not wheels."""
    hint = "pass a wheel built by 'python -m build' or 'hatch build'"
    if not wheel.name.endswith(".whl") or wheel.name.count("-") < 4:
        raise InputRejectedError(f"{wheel} is not named like a wheel (NAME-VER-PY-ABI-PLAT.whl)")
    try:
        with zipfile.ZipFile(wheel) as zf:
            names = [n for n in zf.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
            if len(names) != 1:
                raise InputRejectedError(
                    f"wheel {wheel} has no single .dist-info/METADATA", hint=hint
                )
            return zf.read(names[0])
    except FileNotFoundError:
        raise InputRejectedError(f"no wheel at {wheel}") from None
    except (OSError, zipfile.BadZipFile, KeyError) as e:
        raise InputRejectedError(f"wheel {wheel} cannot be read: {e}", hint=hint) from None


def _closure(requires: Iterable[str], own: str) -> list[metadata.Distribution]:
    """The installed distributions that ``requires`` resolves to here, transitively."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    todo: list[tuple[str, str]] = [(r, "") for r in requires]
    seen: dict[str, metadata.Distribution] = {}
    missing: list[str] = []
    done: set[tuple[str, str]] = set()
    while todo:
        text, extra = todo.pop()
        try:
            req = Requirement(text)
        except InvalidRequirement as e:
            raise InputRejectedError(f"invalid requirement {text!r}: {e}") from None
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(req.name)
        if name == own:
            continue
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            missing.append(str(req))
            continue
        if not req.specifier.contains(dist.version, prereleases=True):
            missing.append(f"{req} (installed: {dist.version})")
        seen.setdefault(name, dist)
        for ex in ("", *sorted(req.extras)):
            if (name, ex) not in done:
                done.add((name, ex))
                todo.extend((r, ex) for r in dist.requires or [])
    if missing:
        raise InputRejectedError(
            f"this environment does not satisfy the wheel's requirements: {'; '.join(missing)}",
            hint="install the wheel's dependencies here (pip install WHEEL), then record again",
        )
    return [seen[k] for k in sorted(seen)]


def wheel_sbom(wheel: Path, spec_version: str = DEFAULT_SPEC_VERSION) -> Sbom:
    """The validated SBOM of ``wheel`` and its dependency closure as resolved here."""
    from packaging.utils import canonicalize_name

    meta = _wheel_metadata(wheel)
    parsed = BytesParser().parsebytes(meta, headersonly=True)
    own = canonicalize_name(str(parsed.get("Name", "")))
    with tempfile.TemporaryDirectory(prefix="starter-sbom-") as tmp:
        venv = Path(tmp) / "venv"
        try:
            subprocess.run(
                [sys.executable, "-m", "venv", "--without-pip", str(venv)],
                check=True,
                capture_output=True,
                timeout=_TIMEOUT,
            )
        except (OSError, subprocess.SubprocessError) as e:
            raise SbomError(f"cannot make a temporary environment in {tmp}: {e}") from None
        site = next((venv / "lib").glob("python*/site-packages"), None) or (
            venv / "Lib" / "site-packages"
        )
        _write_dist(site, own, str(parsed.get("Version", "0")), {"METADATA": meta})
        for dist in _closure(parsed.get_all("Requires-Dist") or [], own):
            files = {"METADATA": (dist.read_text("METADATA") or "").encode()}
            direct = dist.read_text("direct_url.json")
            if direct is not None:
                files["direct_url.json"] = direct.encode()
            _write_dist(site, canonicalize_name(dist.metadata["Name"]), dist.version, files)
        python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
        data = _cyclonedx(str(python), spec_version)
    return parse_sbom(data, f"of wheel {wheel.name}")


def _write_dist(site: Path, name: str, version: str, files: Mapping[str, bytes]) -> None:
    folder = site / f"{name.replace('-', '_')}-{version}.dist-info"
    folder.mkdir(parents=True, exist_ok=True)
    for fname, content in files.items():
        (folder / fname).write_bytes(content)
