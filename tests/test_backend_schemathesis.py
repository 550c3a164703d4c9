"""The backend against its own OpenAPI document, with schemathesis generating the requests.

The app runs in-process on a SQLite ledger with a schedule of token keys and a frozen clock;
schemathesis loads ``/openapi.json`` over ASGI (its ASGI client starts the app's lifespan, and its
pytest plugin ends it after each test), and every generated request, valid or not, must get an
answer that is not a 5xx and that the document describes: status code, content type, headers and
body schema. Every ``$ref`` in the document must also resolve inside it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig

from _backend_helpers import MINUTE, T0, scheduled_site, settings_for, wait_until
from starter_backend.app import create_app
from starter_ledger.clock import FixedClock

#: Every operation the document must list, as (path, method).
OPERATIONS = [
    ("/.well-known/jwks.json", "GET"),
    ("/ledger/checkpoint", "GET"),
    ("/ledger/entries", "GET"),
    ("/ledger/proofs/inclusion", "GET"),
    ("/ledger/proofs/consistency", "GET"),
    ("/health", "GET"),
    ("/ready", "GET"),
]
#: Operations with query parameters, which negative cases can break (the others have none).
WITH_PARAMETERS = ("/ledger/entries", "/ledger/proofs/inclusion", "/ledger/proofs/consistency")
#: The entries and proof operations document a 400 for positions beyond the tree, whose size only
#: the server knows: a schema-valid position past it is rightly refused. Every other status, and
#: every other check, stays as schemathesis has it.
CONFIG = SchemathesisConfig.from_dict(
    {
        "operations": [
            {
                "include-path-regex": "^/ledger/(entries|proofs/)",
                "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400"]}},
            }
        ]
    }
)
EXAMPLES = settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def api(tmp_path: Path) -> Any:
    """The app's schema, loaded over ASGI once the app serves a verified ledger (schemathesis's
    ASGI client starts the lifespan; its pytest plugin ends it after the test)."""
    site = scheduled_site(tmp_path / "ledger")
    app = create_app(settings_for(site.url, max_page=5), clock=FixedClock(T0 + 20 * MINUTE))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)
    ready = schema["/ready"]["GET"]
    wait_until(lambda: ready.Case().call().status_code == 200, 20, "/ready to answer 200")
    return schema


def test_the_document_lists_every_operation(api: Any) -> None:
    """The OpenAPI document describes exactly the operations the backend serves."""
    listed = sorted((op.ok().path, op.ok().method.upper()) for op in api.get_all_operations())
    assert listed == sorted(OPERATIONS)


# schemathesis's own ``from_fixture(...).parametrize()`` fails on pytest 9 (it reads the removed
# ``Function._nodeid``), so the cases come from its Hypothesis strategies instead.
@pytest.mark.parametrize(
    ("path", "method", "mode"),
    [(path, method, GenerationMode.POSITIVE) for path, method in OPERATIONS]
    + [(path, "GET", GenerationMode.NEGATIVE) for path, _ in OPERATIONS if path in WITH_PARAMETERS],
)
def test_every_answer_conforms_to_the_openapi_document(
    api: Any, path: str, method: str, mode: GenerationMode
) -> None:
    """Whatever a client sends, valid or not, the backend answers without a server error and as
    its OpenAPI document says (status, content type, headers, body schema)."""
    operation = api[path][method]

    @EXAMPLES
    @given(case=operation.as_strategy(mode))
    def check(case: Any) -> None:
        case.call_and_validate()

    check()


def _refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [value["$ref"]] if isinstance(value.get("$ref"), str) else []
        return found + [r for v in value.values() for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []


def _resolves(document: dict[str, Any], ref: str) -> bool:
    assert ref.startswith("#/"), ref
    node: Any = document
    for token in ref[2:].split("/"):
        name = token.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or name not in node:
            return False
        node = node[name]
    return True


def test_every_reference_in_the_openapi_document_resolves(tmp_path: Path) -> None:
    """Client generators and validators can follow every ``$ref`` of /openapi.json: each points
    at a part of the document itself."""
    app = create_app(settings_for(f"sqlite:///{tmp_path / 'unused.db'}"))
    document = app.app.openapi()
    dangling = sorted({ref for ref in _refs(document) if not _resolves(document, ref)})
    assert dangling == []
