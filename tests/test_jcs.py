"""The canonicaliser: its C-encoder fast path must be byte-identical to RFC 8785 (rfc8785)."""

from __future__ import annotations

import json

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from starter_ledger.errors import FormatError
from starter_ledger.jcs import _is_simple, canonicalize, parse_canonical

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    _scalars, lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=25
)


def _reference(value: object) -> bytes | None:
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError):
        return None


@settings(max_examples=1500, deadline=None)
@given(json_values)
def test_canonical_bytes_match_rfc8785_for_any_json(value: object) -> None:
    """Whatever JSON a user signs, its signed bytes are exactly the RFC 8785 form."""
    expected = _reference(value)
    if expected is None:
        with pytest.raises(FormatError):
            canonicalize(value)
    else:
        assert canonicalize(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        {"\U0001f600": 1, "\ue000": 2},  # astral vs high-BMP keys: UTF-16 order differs
        {"n": 2**53},  # beyond the exactly representable integers
        {"f": 1.5},
        ["\ud800"],  # a lone surrogate
    ],
)
def test_values_outside_the_fast_path_take_the_reference_path(value: object) -> None:
    """Keys, numbers and strings where the encoders could differ are canonicalised by rfc8785."""
    assert not _is_simple(value) or value == ["\ud800"]
    assert (_reference(value) is None) or canonicalize(value) == _reference(value)


def test_non_canonical_json_is_refused() -> None:
    """Signed JSON must arrive in canonical form; a re-ordered or spaced copy is refused."""
    assert parse_canonical(b'{"a":1,"b":[true,null]}') == {"a": 1, "b": [True, None]}
    for bad in (b'{"b":1,"a":2}', b'{"a": 1}', b'{"a":1,"a":2}', b"NaN", b"\xff"):
        with pytest.raises(FormatError):
            parse_canonical(bad)
    assert json.loads(canonicalize({"é": "ü"})) == {"é": "ü"}
