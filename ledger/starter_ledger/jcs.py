"""The one canonicaliser: RFC 8785 JSON Canonicalization Scheme.

For: every byte string that is hashed or signed (entry envelopes, JWS headers, JWK thumbprint
inputs, proofs of possession). Values made only of objects, arrays, strings, booleans, null and
integers within +/-2**53, whose object keys are all in the Basic Multilingual Plane and whose
strings hold no lone surrogates, serialise under RFC 8785 exactly as the standard library's C
encoder writes them with sorted keys, no whitespace and no ASCII escaping; those take that fast
path. Everything else (floats, large integers, astral-plane keys) goes through the ``rfc8785``
library. A property test holds both paths to identical bytes. Not for: output meant for people,
which uses ordinary pretty JSON.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

from starter_ledger.errors import FormatError

_SAFE_INT = 2**53
_encode = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
).encode


def _is_simple(value: Any) -> bool:
    """True when the C encoder's output is already RFC 8785 canonical for ``value``."""
    stack = [value]
    pop, push = stack.pop, stack.append
    while stack:
        v = pop()
        t = type(v)
        if t is str:
            continue
        if t is dict:
            for k, item in v.items():
                # Keys sort by UTF-16 code units in RFC 8785 and by code points here: the two
                # orders agree only while every key stays in the Basic Multilingual Plane.
                if type(k) is not str or (not k.isascii() and max(k) > "\uffff"):
                    return False
                push(item)
        elif t is list:
            stack.extend(v)
        elif t is int:
            if not -_SAFE_INT < v < _SAFE_INT:
                return False
        elif v is None or t is bool:
            continue
        else:
            return False
    return True


def canonicalize(value: Any) -> bytes:
    """RFC 8785 canonical UTF-8 bytes of a JSON value."""
    if _is_simple(value):
        try:
            return _encode(value).encode("utf-8")
        except UnicodeEncodeError:
            pass  # a lone surrogate: let rfc8785 refuse it with its own message
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as e:
        raise FormatError(f"value cannot be canonicalized (RFC 8785): {e}") from None


def parse_canonical(data: bytes) -> Any:
    """Parse JSON bytes and insist that they are already in RFC 8785 canonical form."""
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as e:  # JSONDecodeError, huge integers, deep nesting
        raise FormatError(f"not acceptable JSON: {type(e).__name__}: {str(e)[:120]}") from None
    if canonicalize(value) != data:
        raise FormatError("JSON is not in RFC 8785 canonical form")
    return value
