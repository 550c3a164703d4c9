"""Version bumps: the next SemVer version, its PEP 440 form, the version file, ``version.bumped``.

For: ``next_version`` (SemVer 2.0 with ``semver``), ``to_pep440`` / ``from_pep440`` (the wheel's
form, checked with ``packaging``), the breaking-change rule (``breaking_allows``), reading and
writing ``contracts/starter_contracts/_version.py`` (the one place the version is written; the
``starter-contracts`` wheel and the backend's OpenAPI ``info.version`` read it), the release
projection of a ledger (``load_state``) and ``bump`` (``starter-cli release bump``). Not for: the
projection's rules (``starter_events.releases``) or the changelog file (``changelog``).

The current version comes from the ledger (the last ``version.bumped``), never from files or tags.
The very first bump starts from the version in the version file and records ``old = None``.

``bump`` in order, each step refusing before anything is written:

1. replay the ledger; compute the next version; refuse one that does not go up, and refuse a
   non-major bump (non-minor before 1.0.0) when a breaking contracts change was frozen since the
   last release or is waiting to be frozen in the code, naming the change and its entry;
2. check that the version file holds the ledger's current version (or already the next one: an
   interrupted bump being finished), so a hand edit is refused;
3. write the version file (atomically);
4. freeze the snapshots (``freeze.freeze``: the OpenAPI document carries the new version, so the
   snapshot folder and ``FROZEN.json`` are rewritten and a ``schema.frozen`` entry appended) so
   that ``contracts check`` stays green; a failure before that append restores the old file;
5. append ``version.bumped`` with the digests the freeze recorded.

A crash between 3 and 5 leaves the file ahead of the ledger: ``contracts check`` fails (or
passes, after 4) and ``release bump`` with the same arguments finishes the job without bumping
twice (step 2 accepts a file that already holds the next version; the freeze is idempotent).
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import semver
from packaging.version import InvalidVersion, Version

from starter_events.releases import ReleaseState, project
from starter_ledger.errors import InputRejectedError
from starter_ledger.files import atomic_write
from starter_ledger.keys import Signer
from starter_ledger.ledger import Ledger

if TYPE_CHECKING:
    from starter_ledger.freeze import Source

__all__ = [
    "BUMP_TYPE",
    "DEFAULT_VERSION_FILE",
    "PARTS",
    "PRE_TOKENS",
    "BumpResult",
    "breaking_allows",
    "bump",
    "from_pep440",
    "load_state",
    "next_version",
    "parse_semver",
    "read_version_file",
    "render_version_file",
    "to_pep440",
    "write_version_file",
]

BUMP_TYPE = "version.bumped"
PARTS: tuple[str, ...] = ("major", "minor", "patch", "prerelease")
#: Pre-release tokens and their PEP 440 spelling (the same order in both schemes).
PRE_TOKENS = {"alpha": "a", "beta": "b", "rc": "rc"}
#: The version file, relative to the repository root.
DEFAULT_VERSION_FILE = Path("contracts/starter_contracts/_version.py")
_LINE = re.compile(r'^__version__ = "([^"\n]{1,64})"$', re.MULTILINE)
_PEP440_RELEASE = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:(a|b|rc)(\d+))?$")
_FIX_FILE = "restore it from version control; only 'starter-cli release bump' writes it"


def parse_semver(text: str, what: str = "version") -> semver.Version:
    """``text`` as SemVer 2.0; an ``InputRejectedError`` (exit 3) otherwise."""
    try:
        return semver.Version.parse(text)
    except (ValueError, TypeError):
        shown = text.encode("unicode_escape").decode("ascii")[:80]
        raise InputRejectedError(
            f"{what} {shown!r} is not a SemVer 2.0 version",
            hint="use MAJOR.MINOR.PATCH with an optional -PRERELEASE, e.g. 1.4.0 or 2.0.0-rc.1",
        ) from None


def next_version(current: str, part: str, pre: str | None = None) -> str:
    """The version after ``current``: ``major``/``minor``/``patch`` (a pre-release moves to its
    release: 1.3.0-rc.2 -> 1.3.0 for minor), or ``prerelease`` (1.2.3 -> 1.2.4-rc.1,
    1.2.4-rc.1 -> 1.2.4-rc.2). ``pre`` names the token (alpha, beta, rc; default rc); with
    ``major``/``minor``/``patch`` it makes the first pre-release of that version
    (1.2.3 major --pre rc -> 2.0.0-rc.1)."""
    if part not in PARTS:
        raise InputRejectedError(
            f"unknown version part {part!r}", hint=f"use one of {', '.join(PARTS)}"
        )
    if pre is not None and pre not in PRE_TOKENS:
        raise InputRejectedError(
            f"pre-release token {pre!r} is not supported",
            hint=f"use one of {', '.join(PRE_TOKENS)} (they have PEP 440 forms)",
        )
    version = parse_semver(current, "current version")
    if part == "prerelease":
        token = pre or "rc"
        if version.prerelease and not version.prerelease.startswith(f"{token}."):
            # Another token: start it on the same release (alpha.3 -> beta.1), if that goes up.
            candidate = version.replace(prerelease=f"{token}.1", build=None)
            if candidate > version:
                return str(candidate)
        return str(version.next_version("prerelease", prerelease_token=token))
    following = version.next_version(part)
    if pre is not None:
        following = following.bump_prerelease(pre)
    return str(following)


def to_pep440(version: str) -> str:
    """The PEP 440 form of a SemVer version as the wheel carries it (1.2.4-rc.1 -> 1.2.4rc1);
    only pre-releases ``<alpha|beta|rc>.<n>`` and no build metadata have one."""
    parsed = parse_semver(version)
    release = f"{parsed.major}.{parsed.minor}.{parsed.patch}"
    if parsed.build:
        raise InputRejectedError(
            f"version {version} has build metadata, which a released package cannot carry"
        )
    text = release
    if parsed.prerelease:
        token, _, number = parsed.prerelease.partition(".")
        if token not in PRE_TOKENS or not number.isdigit():
            raise InputRejectedError(
                f"pre-release {parsed.prerelease!r} of {version} has no PEP 440 form",
                hint="use -alpha.N, -beta.N or -rc.N",
            )
        text = f"{release}{PRE_TOKENS[token]}{int(number)}"
    if str(Version(text)) != text:  # pragma: no cover - the forms above are canonical
        raise InputRejectedError(f"{text} is not a canonical PEP 440 version")
    return text


def from_pep440(text: str) -> str:
    """The SemVer form of a canonical PEP 440 release (1.2.4rc1 -> 1.2.4-rc.1)."""
    try:
        canonical = str(Version(text))
    except InvalidVersion:
        canonical = ""
    found = _PEP440_RELEASE.fullmatch(text)
    if canonical != text or found is None:
        raise InputRejectedError(
            f"{text!r} is not a PEP 440 version of the form X.Y.Z[aN|bN|rcN]", hint=_FIX_FILE
        )
    major, minor, patch, token, number = found.groups()
    base = f"{major}.{minor}.{patch}"
    if token is None:
        return base
    names = {v: k for k, v in PRE_TOKENS.items()}
    return f"{base}-{names[token]}.{number}"


def breaking_allows(reference: str, new: str) -> bool:
    """Whether ``new`` may carry a breaking change against ``reference``: a higher major
    version, or before 1.0.0 a higher minor (or major) version."""
    ref, nxt = parse_semver(reference), parse_semver(new)
    if ref.major >= 1:
        return nxt.major > ref.major
    return nxt.major > 0 or nxt.minor > ref.minor


# -- the version file ----------------------------------------------------------------------


def render_version_file(pep440: str) -> bytes:
    """The version file's bytes for ``pep440``."""
    return (
        '"""The starter-contracts version. Written by `starter-cli release bump`; never edit it '
        'by hand."""\n\n'
        f'__version__ = "{pep440}"\n'
    ).encode("ascii")


def read_version_file(path: Path) -> str:
    """The PEP 440 version in the version file; refuses a missing or corrupt file by name."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise InputRejectedError(
            f"version file {path} does not exist",
            hint="run from the repository root, or pass --version-file "
            "(contracts/starter_contracts/_version.py)",
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputRejectedError(f"cannot read version file {path}: {e}", hint=_FIX_FILE) from None
    found = _LINE.findall(text)
    if len(found) != 1:
        raise InputRejectedError(
            f'version file {path} must hold exactly one line __version__ = "X.Y.Z" '
            f"(found {len(found)})",
            hint=_FIX_FILE,
        )
    from_pep440(found[0])  # validates it
    return str(found[0])


def write_version_file(path: Path, pep440: str) -> None:
    """Replace the version file atomically, and drop its bytecode so that every process (even
    one started within the same second) imports the new version."""
    with atomic_write(path, "version file") as f:
        f.write(render_version_file(pep440))
    Path(importlib.util.cache_from_source(str(path))).unlink(missing_ok=True)


def _installed_version_file() -> Path:
    import starter_contracts._version as module

    return Path(module.__file__ or "").resolve()


def _reload_version(path: Path, pep440: str) -> None:
    """Make this process see the version just written (the backend's OpenAPI document reads
    ``starter_contracts.__version__`` when it is built)."""
    import starter_contracts._version as module

    if Path(module.__file__ or "").resolve() == path.resolve():
        module.__version__ = pep440


# -- the projection ------------------------------------------------------------------------


def load_state(ledger: Ledger) -> ReleaseState:
    """The release projection of every entry of ``ledger``."""
    return project(
        (seq, e.envelope.occurred_at, e.envelope.type, e.envelope.payload)
        for seq, e in ledger.entries()
    )


# -- bump ----------------------------------------------------------------------------------


@dataclass
class BumpResult:
    """What ``bump`` did."""

    old: str | None
    new: str
    pep440: str
    part: str
    seq: int
    freeze_seq: int
    freeze_appended: bool
    snapshots: dict[str, str]
    breaking_since_release: bool
    version_file: Path
    resumed: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "old": self.old,
            "new": self.new,
            "pep440": self.pep440,
            "part": self.part,
            "seq": self.seq,
            "freeze_seq": self.freeze_seq,
            "freeze_appended": self.freeze_appended,
            "snapshots": self.snapshots,
            "breaking_since_release": self.breaking_since_release,
            "version_file": str(self.version_file),
            "resumed": self.resumed,
        }


def _pending_breaking(folder: Path, sources: Sequence[Source] | None) -> list[str]:
    """Breaking changes in the code that are not frozen yet (``contracts check``)."""
    from starter_ledger.freeze import check

    report = check(folder, sources=sources)
    return [
        f"{c.kind} in {f'{c.snapshot} {c.where}'.strip()} ({c.detail}), not frozen yet"
        for c in report.changes
        if c.breaking
    ]


def _refuse_breaking(reference: str, new: str, part: str, reasons: list[str]) -> None:
    parsed = parse_semver(reference)
    need, command = ("major", "major") if parsed.major >= 1 else ("minor (or major)", "minor")
    more = f" and {len(reasons) - 1} more" if len(reasons) > 1 else ""
    raise InputRejectedError(
        f"a {part} bump to {new} is refused: a breaking contracts change since {reference} "
        f"needs a {need} bump: {reasons[0]}{more}",
        hint=f"run 'starter-cli release bump {command}', or undo the breaking change "
        "(and freeze again)",
    )


def bump(
    ledger: Ledger,
    signer: Signer,
    actor: str,
    part: str,
    *,
    pre: str | None = None,
    version_file: Path = DEFAULT_VERSION_FILE,
    snapshots: Path = Path("contracts/snapshots"),
    sources: Sequence[Source] | None = None,
) -> BumpResult:
    """Bump the version (see the module docstring for the steps and their crash safety).

    ``sources`` replaces the installed snapshot sources (tests); without it the version file
    must be the one the installed ``starter-contracts`` reads, so that the OpenAPI document
    frozen with the bump carries the new version.
    """
    from starter_ledger.freeze import freeze

    if part not in PARTS:
        raise InputRejectedError(
            f"unknown version part {part!r}", hint=f"use one of {', '.join(PARTS)}"
        )
    if sources is None and version_file.resolve() != _installed_version_file():
        raise InputRejectedError(
            f"version file {version_file} is not the one the installed starter-contracts "
            f"reads ({_installed_version_file()})",
            hint="run from the repository root, or pass --version-file with that path",
        )
    state = load_state(ledger)
    in_file = read_version_file(version_file)
    base = state.current if state.current is not None else from_pep440(in_file)
    new = next_version(base, part, pre)
    pep440 = to_pep440(new)
    for earlier in [base, *(r.version for r in state.releases)]:
        if parse_semver(new) <= parse_semver(earlier):
            raise InputRejectedError(
                f"version {new} does not go above {earlier}: a version never repeats or goes down",
                hint="choose another part (release bump major|minor|patch|prerelease)",
            )
    resumed = False
    if state.current is not None and in_file != to_pep440(state.current):
        if in_file != pep440:
            raise InputRejectedError(
                f"version file {version_file} says {in_file}, but the ledger's current version "
                f"is {state.current} ({to_pep440(state.current)})",
                hint=f"{_FIX_FILE} (set it back to {to_pep440(state.current)})",
            )
        resumed = True  # an interrupted bump to this very version: finish it
    reference, freezes = state.breaking_reference()
    reference = reference or base
    pending = _pending_breaking(snapshots, sources)
    reasons = [f.describe() for f in freezes] + pending
    if reasons and not breaking_allows(reference, new):
        _refuse_breaking(reference, new, part, reasons)

    old_bytes = version_file.read_bytes()
    size = ledger.size()
    if not resumed:
        write_version_file(version_file, pep440)
    _reload_version(version_file, pep440)
    try:
        frozen = freeze(ledger, signer, actor, snapshots, contracts_version=pep440, sources=sources)
    except BaseException as e:
        if ledger.size() == size and not resumed:  # nothing recorded: put the old file back
            with atomic_write(version_file, "version file") as f:
                f.write(old_bytes)
            Path(importlib.util.cache_from_source(str(version_file))).unlink(missing_ok=True)
            _reload_version(version_file, in_file)
        if isinstance(e, InputRejectedError) and ledger.size() != size:
            raise InputRejectedError(
                f"the bump to {new} is half done: {e.message}",
                hint=f"fix that, then run 'starter-cli release bump {part}' again: it finishes "
                "without bumping twice",
            ) from None
        raise
    payload = {
        "old": state.current,
        "new": new,
        "pep440": pep440,
        "part": part,
        "snapshots": frozen.snapshots,
        "breaking_since_release": bool(state.breaking_since_release or pending),
    }
    result = ledger.append(BUMP_TYPE, payload, signer, actor)
    return BumpResult(
        old=state.current,
        new=new,
        pep440=pep440,
        part=part,
        seq=result.first_seq,
        freeze_seq=frozen.seq,
        freeze_appended=frozen.appended,
        snapshots=frozen.snapshots,
        breaking_since_release=payload["breaking_since_release"] is True,
        version_file=version_file,
        resumed=resumed,
    )
