"""The json and jsonb decoders: the same values and errors as json.loads, by a shorter path."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from repo._postgres.codecs import _decode_json, _decode_jsonb

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(JSON, st.sampled_from(["", " ", "\n", "\t "]), st.sampled_from(["", " ", "\n"]))
def test_the_same_values_as_json_loads(value: object, before: str, after: str) -> None:
    text = before + json.dumps(value) + after
    assert _decode_json(text.encode()) == json.loads(text)
    assert _decode_jsonb(b"\x01" + text.encode()) == json.loads(text)


@pytest.mark.parametrize("text", ["", "{", '{"a": 1} x', "\ufeff{}", "[1,]", "nul"])
def test_the_same_errors_as_json_loads(text: str) -> None:
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(text)
    with pytest.raises(json.JSONDecodeError) as got:
        _decode_jsonb(b"\x01" + text.encode())
    assert str(got.value) == str(expected.value)
