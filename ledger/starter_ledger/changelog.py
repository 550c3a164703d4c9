"""CHANGELOG.md as a projection of the ledger, in Keep a Changelog 1.1.0 form.

For: ``render`` (the release projection and a header to the file's text), ``write`` (atomic;
``starter-cli changelog write``) and ``check`` (a unified diff between the file and the
projection, empty when they agree; ``starter-cli changelog check``). The file is the header
(everything before the first ``## `` heading: the title and the intro the project writes by
hand, kept as it is), ``## [Unreleased]``, then one ``## [X.Y.Z] - YYYY-MM-DD`` slice per
release, newest first (the date is the UTC day of its ``release.tagged`` entry). Each slice lists
its categories in Keep a Changelog's order, entries as ``- text`` in ledger order. Rendering is a
pure function of the ledger's events and the header: regenerating twice changes no byte. Not for:
recording entries (``starter-cli changelog add`` appends ``changelog.added``) or the rules of
what goes in which slice (``starter_events.releases``).
"""

from __future__ import annotations

import difflib
from pathlib import Path

from starter_events.releases import ChangelogItem, ReleaseState, sort_items
from starter_ledger.errors import InputRejectedError
from starter_ledger.files import atomic_write

__all__ = ["DEFAULT_HEADER", "check", "read_header", "render", "write"]

DEFAULT_HEADER = """# Changelog

All notable changes to this project are recorded here. The format follows
[Keep a Changelog](https://keepachangelog.com/en/1.1.0/), and versions follow
[Semantic Versioning](https://semver.org/spec/v2.0.0.html). This file is generated from the
ledger's release events by `starter-cli changelog write`; do not edit below this paragraph.
"""
_REGENERATE = "starter-cli changelog write"


def _slice(title: str, items: list[ChangelogItem]) -> list[str]:
    lines = [f"## {title}", ""]
    for category, found in sort_items(items).items():
        if not found:
            continue
        lines += [f"### {category}", ""]
        lines += [f"- {item.text}" for item in found]
        lines.append("")
    return lines


def render(state: ReleaseState, header: str = DEFAULT_HEADER) -> str:
    """The whole file: ``header``, Unreleased, then each release, newest first."""
    lines = [header.rstrip("\n"), ""]
    lines += _slice("[Unreleased]", state.unreleased)
    for release in reversed(state.releases):
        lines += _slice(f"[{release.version}] - {release.date}", list(release.changes))
    return "\n".join(lines).rstrip("\n") + "\n"


def _read(path: Path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8").replace("\r\n", "\n")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise InputRejectedError(
            f"cannot read changelog {path}: {e}",
            hint=f"restore it from version control, or delete it and run '{_REGENERATE}'",
        ) from None


def read_header(path: Path) -> str:
    """The hand-written header of the changelog at ``path`` (everything before its first
    ``## `` heading), or ``DEFAULT_HEADER`` when the file does not exist."""
    text = _read(path)
    if text is None:
        return DEFAULT_HEADER
    head: list[str] = []
    for line in text.split("\n"):
        if line.startswith("## "):
            break
        head.append(line)
    header = "\n".join(head).strip("\n")
    if not header.startswith("# "):
        raise InputRejectedError(
            f"changelog {path} does not start with a '# ' title line",
            hint="put the title and intro paragraph first (they are kept), or delete the file "
            f"and run '{_REGENERATE}'",
        )
    return header + "\n"


def write(path: Path, state: ReleaseState) -> bool:
    """Regenerate the changelog at ``path`` from ``state``, keeping its header; True when the
    file changed."""
    new = render(state, read_header(path))
    if _read(path) == new:
        return False
    with atomic_write(path, "changelog") as f:
        f.write(new.encode("utf-8"))
    return True


def check(path: Path, state: ReleaseState) -> str:
    """A unified diff from the file at ``path`` to the projection; empty when they agree."""
    old = _read(path)
    new = render(state, read_header(path))
    return "".join(
        difflib.unified_diff(
            (old or "").splitlines(keepends=True),
            new.splitlines(keepends=True),
            f"{path} (file)",
            f"{path} (ledger)",
        )
    )
