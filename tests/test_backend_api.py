"""The backend's HTTP API, through Starlette's ``TestClient`` with the lifespan running.

Each test builds a SQLite ledger with deterministic keys under ``tmp_path``, starts the app on it
with a frozen clock (``FixedClock``) and a fast poll, and waits for ``/ready``. What is served is
compared with what the library and the CLI say about the same ledger: the JWKS byte for byte,
checkpoints, entries verbatim, and proofs verified with ``starter_ledger.merkle``. Bad parameters
must get a 4xx JSON answer, never a 5xx; a damaged ledger must turn ``/ready`` to 503 while the
last verified JWKS is still served; and the backend must never write to the ledger.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import sqlite3
from contextlib import closing
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest

from _backend_helpers import (
    HOUR,
    MINUTE,
    T0,
    Site,
    TestClient,
    cli_env,
    drop_triggers,
    forge_with_sqlite3,
    forged_row,
    python,
    run_cli,
    running,
    scheduled_site,
    settings_for,
    simple_site,
    stamp,
    truncate_sqlite,
    wait_until,
)
from starter_contracts.jwk import JWKS as JWKSModel
from starter_ledger import Ledger
from starter_ledger.clock import FixedClock
from starter_ledger.encoding import b64_encode
from starter_ledger.jwks import jwks_bytes, jwks_digest
from starter_ledger.merkle import leaf_hash, verify_consistency, verify_inclusion

JWKS = "/.well-known/jwks.json"
CHECKPOINT = "/ledger/checkpoint"
#: Members a published JWK may have: RFC 7517/8037 public members plus kid, alg, use.
PUBLIC_MEMBERS = {"kty", "crv", "x", "y", "kid", "alg", "use"}
#: When the scheduled site's keys change: key 0 leaves, key 2 may activate.
RETIRED_UNTIL = T0 + 10 * MINUTE + HOUR
STAGED_FROM = T0 + 20 * MINUTE + HOUR


def _b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def _max_age(response: Any) -> int:
    value = response.headers["cache-control"]
    assert value.startswith("public, max-age="), value
    return int(value.removeprefix("public, max-age="))


def _keys_in(body: bytes) -> list[str]:
    return [k["kid"] for k in json.loads(body)["keys"]]


def _members(value: Any) -> set[str]:
    """Every object member name anywhere in a JSON value."""
    if isinstance(value, dict):
        return set(value).union(*(_members(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_members(v) for v in value))
    return set()


def _error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """A 4xx with a JSON body (the project's ErrorBody for 400/503, FastAPI's for 422)."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    if code is not None:
        assert body["error"] == code, body
        assert body["message"]
    return body


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return simple_site(tmp_path / "ledger")


# -- the JWKS -----------------------------------------------------------------------------------


def test_jwks_is_the_clis_bytes_with_public_members_and_a_strong_etag(tmp_path: Path) -> None:
    """The JWKS endpoint serves exactly what ``starter-cli keys jwks`` prints at the same moment,
    public members only, with ETag, Cache-Control and Last-Modified derived from it."""
    site = scheduled_site(tmp_path / "ledger")
    now = T0 + 20 * MINUTE
    cli = run_cli(
        "keys", "jwks", "--ledger", site.url, env=cli_env(STARTER_NOW=stamp(now)), cwd=tmp_path
    )
    assert cli.returncode == 0, cli.stderr
    with Ledger.open(site.url) as led:
        expected = jwks_bytes(led.key_ring(), now)
    assert cli.stdout == expected

    with running(settings_for(site.url), FixedClock(now)) as client:
        r = client.get(JWKS)
    assert r.status_code == 200
    assert r.content == expected
    assert r.headers["content-type"] == "application/jwk-set+json"
    assert r.headers["content-length"] == str(len(expected))
    assert r.headers["etag"] == f'"{jwks_digest(expected)}"'
    assert _keys_in(r.content) == [site.kid(1), site.kid(2), site.kid(0)]  # active, staged, retired
    JWKSModel.model_validate_json(r.content)  # the contract model refuses any private member
    assert "d" not in _members(r.json())
    for key in r.json()["keys"]:
        assert set(key) <= PUBLIC_MEMBERS
    # The newest key event (key 2 staged) happened at the app's "now".
    assert parsedate_to_datetime(r.headers["last-modified"]) == now
    # Key 0 leaves the set in 50 minutes, sooner than the default max-age of an hour.
    assert _max_age(r) == int((RETIRED_UNTIL - now).total_seconds()) == 3000


def test_max_age_is_the_configured_one_when_no_change_is_near(site: Site) -> None:
    """With only an active key (its expiry 90 days away), clients may cache the JWKS for the
    configured ``jwks_max_age``."""
    with running(settings_for(site.url, jwks_max_age=1800), FixedClock(T0)) as client:
        r = client.get(JWKS)
    assert r.status_code == 200
    assert _max_age(r) == 1800
    assert _keys_in(r.content) == [site.kid(0)]


@pytest.mark.parametrize(
    ("after", "max_age"),
    [
        (dt.timedelta(0), 3600),
        (45 * MINUTE, 900),
        (HOUR - dt.timedelta(seconds=1), 1),
        (HOUR, 3600),  # the staged key's not_before has passed: the next change is far off
    ],
)
def test_max_age_counts_down_to_a_staged_keys_activation(
    site: Site, after: dt.timedelta, max_age: int
) -> None:
    """A key staged for T0+1h caps max-age at the seconds left until it activates, so no client
    caches a JWKS past the change."""
    site.rotate()  # staged at T0, not_before T0+1h
    with running(settings_for(site.url, jwks_max_age=3600), FixedClock(T0 + after)) as client:
        r = client.get(JWKS)
    assert r.status_code == 200
    assert _max_age(r) == max_age
    assert _keys_in(r.content) == [site.kid(0), site.kid(1)]


def test_max_age_never_outlasts_a_change_further_away_than_the_max_age(tmp_path: Path) -> None:
    """With jwks_max_age below the time to the next key change, max-age must still count down
    once the change comes within jwks_max_age, even when nothing is appended meanwhile."""
    site = scheduled_site(tmp_path / "ledger")
    clock = FixedClock(T0 + 20 * MINUTE)  # key 0 leaves in 50 minutes
    with running(settings_for(site.url, jwks_max_age=600), clock) as client:
        assert _max_age(client.get(JWKS)) == 600
        clock.moment = RETIRED_UNTIL - dt.timedelta(seconds=100)
        r = client.get(JWKS)
    assert _keys_in(r.content) == [site.kid(1), site.kid(2), site.kid(0)]
    assert _max_age(r) == 100


def test_conditional_and_head_requests(site: Site) -> None:
    """A client revalidating with If-None-Match (the ETag, a list holding it, its weak form or
    ``*``) gets a 304 with no body; another tag gets the full 200; HEAD gives the same headers as
    GET without the body."""
    with running(settings_for(site.url), FixedClock(T0)) as client:
        full = client.get(JWKS)
        etag = full.headers["etag"]
        for tag in (etag, f"W/{etag}", "*", f'"sha256:{"0" * 64}", {etag}'):
            r = client.get(JWKS, headers={"If-None-Match": tag})
            assert r.status_code == 304, tag
            assert r.content == b""
            assert r.headers["etag"] == etag
            assert r.headers["cache-control"] == full.headers["cache-control"]
        other = client.get(JWKS, headers={"If-None-Match": f'"sha256:{"0" * 64}"'})
        assert other.status_code == 200
        assert other.content == full.content
        head = client.head(JWKS)
        assert head.status_code == 200
        assert head.content == b""
        assert dict(head.headers) == dict(full.headers)
        head_304 = client.head(JWKS, headers={"If-None-Match": etag})
        assert head_304.status_code == 304
        assert head_304.content == b""


def test_the_framework_routes_answer_as_the_fast_path_does(site: Site) -> None:
    """The FastAPI routes behind the fast path (documented in OpenAPI) give the same status,
    headers and body for the JWKS and the checkpoint, for a 200 and for a 304."""
    with running(settings_for(site.url), FixedClock(T0)) as client:
        inner = TestClient(client.app.app, base_url="http://127.0.0.1")
        for path in (JWKS, "/ledger/checkpoint"):
            fast = client.get(path)
            routed = inner.get(path)
            assert (routed.status_code, routed.content) == (200, fast.content)
            for name in ("content-type", "content-length", "etag", "cache-control"):
                assert routed.headers.get(name) == fast.headers.get(name), (path, name)
            if path == JWKS:
                assert routed.headers["last-modified"] == fast.headers["last-modified"]
            tag = {"If-None-Match": fast.headers["etag"]}
            fast_304, routed_304 = client.get(path, headers=tag), inner.get(path, headers=tag)
            assert (fast_304.status_code, routed_304.status_code) == (304, 304)
            assert routed_304.content == b""
            assert routed_304.headers["etag"] == fast_304.headers["etag"]


def test_the_jwks_follows_the_clock_past_key_changes(tmp_path: Path) -> None:
    """As the clock passes a retired key's verify_until the key leaves the JWKS (new ETag,
    Last-Modified at that moment), and past a staged key's not_before max-age stops counting
    down to it; no append is needed for either."""
    site = scheduled_site(tmp_path / "ledger")
    clock = FixedClock(T0 + 20 * MINUTE)
    with running(settings_for(site.url), clock) as client:
        before = client.get(JWKS)
        assert _keys_in(before.content) == [site.kid(1), site.kid(2), site.kid(0)]

        clock.moment = RETIRED_UNTIL
        after = client.get(JWKS)
        assert _keys_in(after.content) == [site.kid(1), site.kid(2)]
        assert after.headers["etag"] == f'"{jwks_digest(after.content)}"'
        assert after.headers["etag"] != before.headers["etag"]
        assert parsedate_to_datetime(after.headers["last-modified"]) == RETIRED_UNTIL
        assert _max_age(after) == 600  # key 2's activation is 10 minutes away
        assert (
            client.get(JWKS, headers={"If-None-Match": before.headers["etag"]}).status_code == 200
        )
        with Ledger.open(site.url) as led:
            assert after.content == jwks_bytes(led.key_ring(), RETIRED_UNTIL)

        clock.moment = STAGED_FROM
        later = client.get(JWKS)
        assert later.content == after.content  # activation itself needs an appended event
        assert _max_age(later) == 3600
        assert client.get("/ready").json()["jwks_etag"] == later.headers["etag"]


# -- the checkpoint ------------------------------------------------------------------------------


def test_checkpoint_is_the_stored_latest_note(site: Site) -> None:
    """GET /ledger/checkpoint serves the ledger's latest signed checkpoint as text, with an ETag
    a client can revalidate."""
    with Ledger.open(site.url) as led:
        note = led.latest_checkpoint()
    with running(settings_for(site.url), FixedClock(T0)) as client:
        r = client.get(CHECKPOINT)
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/plain; charset=utf-8"
        assert r.text == note
        etag = r.headers["etag"]
        assert etag == f'"sha256:{hashlib.sha256(note.encode()).hexdigest()}"'
        again = client.get(CHECKPOINT, headers={"If-None-Match": etag})
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["etag"] == etag


# -- entries -------------------------------------------------------------------------------------


def test_entries_are_paged_verbatim(site: Site) -> None:
    """Entries come back byte for byte as stored, a page at a time, ``next`` leading through
    the whole verified tree."""
    with Ledger.open(site.url) as led:
        stored = list(led.store.iter_entries())
    size = len(stored)
    assert size == 6
    with running(settings_for(site.url, max_page=4), FixedClock(T0)) as client:
        first = client.get("/ledger/entries").json()
        assert (first["start"], first["end"], first["size"], first["next"]) == (0, 4, size, 4)
        second = client.get("/ledger/entries", params={"start": 4}).json()
        assert (second["start"], second["end"], second["next"]) == (4, size, None)
        middle = client.get("/ledger/entries", params={"start": 2, "end": 5}).json()
        assert [e["seq"] for e in middle["entries"]] == [2, 3, 4]
        assert middle["next"] == 5
        empty = client.get("/ledger/entries", params={"start": size}).json()
        assert (empty["entries"], empty["end"], empty["next"]) == ([], size, None)

        seen: list[tuple[int, bytes]] = []
        start: int | None = 0
        while start is not None:
            page = client.get("/ledger/entries", params={"start": start}).json()
            seen.extend((e["seq"], e["entry"].encode("ascii")) for e in page["entries"])
            start = page["next"]
    assert seen == stored


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("start=-1", 422, None),
        ("end=-1", 422, None),
        ("start=abc", 422, None),
        ("start=1.5", 422, None),
        ("end=", 422, None),
        (f"start={10**30}", 422, None),
        (f"end={10**30}", 422, None),
        (f"start={2**53 + 1}", 422, None),
        ("start=7", 400, "start-out-of-range"),
        (f"start={2**53}", 400, "start-out-of-range"),
        ("end=7", 400, "end-out-of-range"),
        ("start=3&end=2", 400, "bad-range"),
        ("start=0&end=5", 400, "page-too-large"),
    ],
)
def test_bad_entry_ranges_get_a_4xx_json_answer(
    site: Site, query: str, status: int, code: str | None
) -> None:
    """Out-of-range, malformed or absurd ``start``/``end`` values get a 4xx with a JSON body
    saying what is wrong, never a 5xx."""
    with running(settings_for(site.url, max_page=4), FixedClock(T0)) as client:
        _error(client.get(f"/ledger/entries?{query}"), status, code)


# -- proofs --------------------------------------------------------------------------------------


def test_inclusion_proofs_verify_against_the_ledgers_roots(site: Site) -> None:
    """Every inclusion proof served, for every entry in every tree size (and the default size),
    verifies against the root the ledger itself computes."""
    with Ledger.open(site.url) as led:
        entries = [raw for _, raw in led.store.iter_entries()]
        roots = {n: led.root(n) for n in range(1, len(entries) + 1)}
    size = len(entries)
    with running(settings_for(site.url), FixedClock(T0)) as client:
        default = client.get("/ledger/proofs/inclusion", params={"index": 2}).json()
        assert (default["index"], default["size"]) == (2, size)
        for n in range(1, size + 1):
            for index in range(n):
                r = client.get("/ledger/proofs/inclusion", params={"index": index, "size": n})
                assert r.status_code == 200, r.text
                body = r.json()
                assert (body["index"], body["size"]) == (index, n)
                assert _b64(body["leaf_hash"]) == leaf_hash(entries[index])
                assert _b64(body["root_hash"]) == roots[n]
                proof = [_b64(h) for h in body["proof"]]
                verify_inclusion(leaf_hash(entries[index]), index, n, proof, roots[n])


def test_consistency_proofs_verify_against_the_ledgers_roots(site: Site) -> None:
    """Every consistency proof served between two tree sizes (and to the default, latest size)
    verifies, with both roots equal to the ledger's own."""
    with Ledger.open(site.url) as led:
        size = led.size()
        roots = {n: led.root(n) for n in range(1, size + 1)}
    with running(settings_for(site.url), FixedClock(T0)) as client:
        default = client.get("/ledger/proofs/consistency", params={"first": 2}).json()
        assert (default["first"], default["second"]) == (2, size)
        for second in range(1, size + 1):
            for first in range(1, second + 1):
                r = client.get(
                    "/ledger/proofs/consistency", params={"first": first, "second": second}
                )
                assert r.status_code == 200, r.text
                body = r.json()
                assert _b64(body["first_root_hash"]) == roots[first]
                assert _b64(body["second_root_hash"]) == roots[second]
                proof = [_b64(h) for h in body["proof"]]
                verify_consistency(first, second, proof, roots[first], roots[second])


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("inclusion?index=6", 400, "index-out-of-range"),
        ("inclusion?index=3&size=3", 400, "index-out-of-range"),
        ("inclusion?index=0&size=7", 400, "size-out-of-range"),
        (f"inclusion?index={2**53}", 400, "index-out-of-range"),
        ("inclusion?index=-1", 422, None),
        ("inclusion?index=0&size=0", 422, None),
        ("inclusion", 422, None),
        (f"inclusion?index={10**30}", 422, None),
        ("inclusion?index=x", 422, None),
        ("consistency?first=4&second=3", 400, "bad-range"),
        ("consistency?first=7", 400, "bad-range"),
        ("consistency?first=1&second=7", 400, "second-out-of-range"),
        ("consistency?first=0", 422, None),
        ("consistency?first=0&second=3", 422, None),
        ("consistency", 422, None),
        (f"consistency?first=1&second={10**30}", 422, None),
    ],
)
def test_bad_proof_parameters_get_a_4xx_json_answer(
    site: Site, query: str, status: int, code: str | None
) -> None:
    """Positions outside the verified tree, reversed ranges, zero sizes and malformed numbers
    get a 4xx with a JSON body, never a 5xx."""
    with running(settings_for(site.url), FixedClock(T0)) as client:
        _error(client.get(f"/ledger/proofs/{query}"), status, code)


# -- health and readiness ------------------------------------------------------------------------


def test_ready_reports_the_verified_state(site: Site) -> None:
    """/health always answers; /ready answers 200 with the verified size, root and JWKS ETag."""
    with Ledger.open(site.url) as led:
        size, root = led.size(), led.root()
    with running(settings_for(site.url), FixedClock(T0)) as client:
        assert client.get("/health").json() == {"status": "ok"}
        body = client.get("/ready").json()
        etag = client.get(JWKS).headers["etag"]
    assert body["status"] == "ready"
    assert body["reason"] is None
    assert (body["size"], body["root_hash"], body["jwks_etag"]) == (size, b64_encode(root), etag)
    assert 0 <= body["checked_ago"] < 5


def _not_ready(client: Any, says: str) -> dict[str, Any]:
    """Wait until /ready answers 503 with a reason containing ``says`` (it starts out 503 with
    "starting: ..." while the first verification runs)."""

    def answer() -> Any:
        r = client.get("/ready")
        return r.status_code == 503 and says in (r.json()["reason"] or "") and r

    r = wait_until(answer, 10, f"/ready to answer 503 saying {says!r}")
    body: dict[str, Any] = r.json()
    assert body["status"] == "not-ready"
    return body


def test_not_ready_when_the_ledger_file_is_missing(tmp_path: Path) -> None:
    """A ledger URL pointing at no file leaves the replica alive (/health) but not ready, saying
    why, and it serves no JWKS; the backend does not create the file."""
    missing = tmp_path / "nowhere" / "ledger.db"
    with running(settings_for(f"sqlite:///{missing}"), FixedClock(T0), ready=False) as client:
        body = _not_ready(client, "unavailable")
        assert str(missing) in body["reason"]
        assert client.get("/health").status_code == 200
        _error(client.get(JWKS), 503, "not-ready")
        _error(client.get(CHECKPOINT), 503, "not-ready")
        _error(client.get("/ledger/entries"), 503, "not-ready")
    assert not missing.parent.exists()


def test_not_ready_when_the_ledger_is_empty(tmp_path: Path) -> None:
    """A ledger without a genesis entry is not ready, and says it is empty."""
    db = tmp_path / "ledger.db"
    Ledger.open(f"sqlite:///{db}", create=True).close()
    with running(settings_for(f"sqlite:///{db}"), FixedClock(T0), ready=False) as client:
        body = _not_ready(client, "empty")
        assert body["size"] is None
        _error(client.get("/ledger/proofs/consistency?first=1"), 503, "not-ready")


def test_a_forged_entry_turns_ready_off_and_the_last_jwks_stays_served(site: Site) -> None:
    """An entry written into the file by someone without the ledger's key (raw sqlite3 INSERT)
    makes /ready 503 naming the entry and the check, while the JWKS and checkpoint stay the last
    verified ones and entries beyond the verified tree are not served."""
    with Ledger.open(site.url) as led:
        row = forged_row(led, T0)
    with running(settings_for(site.url), FixedClock(T0)) as client:
        jwks = client.get(JWKS)
        checkpoint = client.get(CHECKPOINT)
        forge_with_sqlite3(site.db, row)
        body = _not_ready(client, f"entry {row.seq}")
        assert "authorisation" in body["reason"]
        assert body["size"] == row.seq
        again = client.get(JWKS)
        assert (again.status_code, again.content) == (200, jwks.content)
        assert again.headers["etag"] == jwks.headers["etag"]
        assert client.get(CHECKPOINT).text == checkpoint.text
        _error(client.get(f"/ledger/entries?start={row.seq + 1}"), 400, "start-out-of-range")
        page = client.get("/ledger/entries").json()
        assert page["size"] == row.seq
        assert [e["seq"] for e in page["entries"]] == list(range(row.seq))


@pytest.mark.parametrize(
    "path",
    [
        "/ledger/proofs/inclusion?index=0",
        "/ledger/proofs/consistency?first=1",
        "/ledger/entries",
    ],
)
def test_a_truncated_ledger_gets_no_500_and_no_short_page(site: Site, path: str) -> None:
    """After verified entries are deleted from the file (/ready then says so), the endpoints that
    read the store answer with a JSON error such as 503, or with complete data: never a 500, and
    never a page holding fewer entries than its range says."""
    with running(settings_for(site.url), FixedClock(T0), raise_server_exceptions=False) as client:
        truncate_sqlite(site.db, keep=3)
        _not_ready(client, "truncated")
        r = client.get(path)
    assert r.status_code != 500, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    if r.status_code == 503:
        assert r.json()["error"] == "ledger-unavailable"
    if r.status_code == 200 and "entries" in r.json():
        page = r.json()
        assert len(page["entries"]) == page["end"] - page["start"], page


# -- never writing -------------------------------------------------------------------------------


def _files(db: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(db.parent.iterdir())
        if p.name.startswith(db.name)
    }


def _session(client: Any) -> None:
    """A bit of everything a client does."""
    for path in (
        JWKS,
        CHECKPOINT,
        "/ledger/entries",
        "/ledger/proofs/inclusion?index=1",
        "/ledger/proofs/consistency?first=2",
        "/ready",
        "/health",
        "/ledger/entries?start=99",
    ):
        assert client.get(path).status_code < 500


def test_the_backend_never_writes_to_the_ledger(site: Site) -> None:
    """A session of requests leaves the ledger file byte for byte as it was (no -wal content is
    left either), and the ledger's size and root unchanged."""
    with Ledger.open(site.url) as led:
        size, root = led.size(), led.root()
    before = _files(site.db)
    assert set(before) == {"ledger.db"}  # the writer closed: WAL checkpointed and removed
    with running(settings_for(site.url), FixedClock(T0)) as client:
        _session(client)
        during = _files(site.db)
        assert during["ledger.db"] == before["ledger.db"]
        wal = site.db.with_name("ledger.db-wal")
        assert not wal.exists() or wal.stat().st_size == 0
    after = _files(site.db)
    assert after["ledger.db"] == before["ledger.db"]
    assert set(after) <= {"ledger.db", "ledger.db-wal", "ledger.db-shm"}
    with Ledger.open(site.url) as led:
        assert (led.size(), led.root()) == (size, root)


def test_the_backend_does_not_change_a_ledgers_journal_mode(site: Site) -> None:
    """A ledger kept in rollback-journal mode (e.g. restored from a backup) is served without
    the read-only backend rewriting the file into WAL mode."""
    with closing(sqlite3.connect(site.db)) as conn:
        assert conn.execute("PRAGMA journal_mode=DELETE").fetchone() == ("delete",)
    before = _files(site.db)
    with running(settings_for(site.url), FixedClock(T0)) as client:
        _session(client)
    with closing(sqlite3.connect(f"file:{site.db}?mode=ro", uri=True)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    assert _files(site.db)["ledger.db"] == before["ledger.db"]


def test_an_older_schema_is_refused_not_migrated(site: Site) -> None:
    """A ledger at schema version 1 is refused by the read-only backend (/ready 503 saying so)
    and left at version 1, byte for byte."""
    with closing(sqlite3.connect(site.db)) as conn, conn:
        drop_triggers(conn)
        conn.execute("DELETE FROM ledger_schema WHERE version = 2")
        conn.execute("DROP INDEX ledger_key_events")
    before = _files(site.db)
    with running(settings_for(site.url), FixedClock(T0), ready=False) as client:
        reason = _not_ready(client, "older")["reason"]
    assert "does not migrate" in reason
    with closing(sqlite3.connect(f"file:{site.db}?mode=ro", uri=True)) as conn:
        versions = [v for (v,) in conn.execute("SELECT version FROM ledger_schema")]
    assert versions == [1]
    assert _files(site.db)["ledger.db"] == before["ledger.db"]


# -- import safety -------------------------------------------------------------------------------

_IMPORT_PROBE = """
import json, os, sys
import starter_backend
heavy = ("fastapi", "starlette", "sqlalchemy", "redis")
after_package = sorted(m for m in heavy if m in sys.modules)
import starter_backend.app
from starter_backend import create_app
app = create_app()
print(json.dumps({"after_package": after_package, "app": type(app).__name__}))
"""


def test_importing_the_backend_reads_nothing_and_opens_nothing(tmp_path: Path) -> None:
    """Importing ``starter_backend`` loads no web framework, and importing its app module and
    building the app read no settings and create no ledger file."""
    missing = tmp_path / "missing" / "ledger.db"
    env = cli_env(STARTER_LEDGER_URL=f"sqlite:///{missing}", STARTER_POLL_INTERVAL="not-a-number")
    proc = python(_IMPORT_PROBE, env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report == {"after_package": [], "app": "FastPath"}
    assert not missing.parent.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []
