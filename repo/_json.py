"""JSON as PostgreSQL stores it: the text of a json or jsonb value, refused when it is not JSON.

Both backends hold json values to the same rule: the PostgreSQL backend's
codecs encode with `json_text`, and the in-memory backend stores what it
gives back, so a value one refuses the other refuses too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

__all__ = ["JsonRefused", "json_text", "loads"]


def _not_json(value: Any) -> Any:
    msg = f"Object of type {type(value).__name__} is not JSON serializable"
    raise TypeError(msg)


loads = json.loads
_dumps: Callable[[Any], str]
_make = getattr(json.encoder, "c_make_encoder", None)
if _make is not None:
    # The C encoder made once, rather than per value as JSONEncoder.encode
    # does: a third of the cost. Without markers it finds a circular
    # reference as infinite nesting (RecursionError), which is refused too.
    _chunks = _make(
        None, _not_json, json.encoder.encode_basestring, None, ":", ",", False, False, False
    )

    def _dumps(value: Any) -> str:
        return "".join(_chunks(value, 0))

else:  # pragma: no cover - CPython always has the C encoder
    _dumps = json.JSONEncoder(allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode
# A \u0000 escape that is not itself an escaped backslash followed by "u0000".
_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


class JsonRefused(ValueError):
    """A value JSON (or PostgreSQL's jsonb) cannot hold; the message says why."""


def json_text(value: Any, *, jsonb: bool = True) -> str:
    """`value` as the JSON text PostgreSQL stores; `JsonRefused` if it is not JSON.

    Dict keys that are int, float, bool or None become strings, as JSON has
    them; tuples become arrays. Anything else JSON has no form for is refused
    rather than turned into something else.
    """
    try:
        text = _dumps(value)
    except (TypeError, ValueError) as exc:
        # TypeError: a set, a datetime, a Decimal, a key of another type;
        # ValueError: NaN or Infinity, or a circular reference.
        raise JsonRefused(str(exc)) from None
    except RecursionError:
        msg = "it is nested too deeply to encode (or it contains itself)"
        raise JsonRefused(msg) from None
    if jsonb and "\\u0000" in text and _NUL.search(text):
        msg = "a string or key holds a NUL character (\\x00), which jsonb cannot store"
        raise JsonRefused(msg)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            msg = "a string or key holds a lone surrogate, which is not valid Unicode"
            raise JsonRefused(msg) from None
    return text
