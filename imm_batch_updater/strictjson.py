"""The one JSON decoder: every event and every body is decoded once, here, strictly.

JSON that Python's `json` accepts but that can never be sent to IMM (or stored by it) is caught at the door:

- a duplicate key in any object (which member wins is a guess: `{"Id": "a", "Id": "b"}`),
- a number that is not finite once decoded: `NaN`, `Infinity`, `-Infinity` (not JSON at all) and numbers that
  overflow a double, such as `1e400` or a 400-digit integer,
- a string (or key) that is not valid Unicode: a lone UTF-16 surrogate, written as an escape (`"\\ud800"`) or
  present in a `str` event; raw bytes that are not UTF-8 make the whole text not JSON.

Such a value does not stop decoding: it is replaced by a `Fault` marker, and `Decoded.faults` lists each one with
its JSON Pointer, in document order. A source then decides what the fault means for its message (a fault inside a
document makes it `invalid` at that pointer; a fault in the envelope around a body makes that message `invalid` at
""), so no trigger can raise on hostile input and no second decoder is needed. Text that is not JSON at all raises
`NotJson`, whose message gives the position and never the content.

    >>> decode(b'{"Id": "a", "Tags": {"n": 1e400}}').faults
    (('/Tags/n', Fault('NonFiniteNumber', 'a number that is not finite once decoded')),)
    >>> decode(b'{"Id": "a", "Id": "b"}').faults
    (('/Id', Fault('DuplicateKey', 'a key given twice in one object')),)
    >>> decode('"\\\\ud800"').faults
    (('', Fault('InvalidUnicode', 'a string that is not valid Unicode (a lone surrogate)')),)
    >>> decode(b'[1, 2]').value, decode(b'[1, 2]').size
    ([1, 2], 6)
"""

from __future__ import annotations

import json
import re
import sys
import threading
from collections.abc import Iterator
from typing import Any, NamedTuple

DUPLICATE_KEY = "DuplicateKey"
NON_FINITE = "NonFiniteNumber"
INVALID_UNICODE = "InvalidUnicode"

_REASONS = {
    DUPLICATE_KEY: "a key given twice in one object",
    NON_FINITE: "a number that is not finite once decoded",
    INVALID_UNICODE: "a string that is not valid Unicode (a lone surrogate)",
}
_MAX_DOUBLE = sys.float_info.max


class Fault:
    """Stands where a value was that can never be sent: see the module docstring. Never equal to a JSON value."""

    __slots__ = ("code",)

    def __init__(self, code: str) -> None:
        self.code = code

    @property
    def reason(self) -> str:
        return _REASONS[self.code]

    def __repr__(self) -> str:
        return f"Fault({self.code!r}, {self.reason!r})"


class NotJson(ValueError):
    """The text is not JSON. `code`: NotJson, NotUtf8 or TooDeep; the message names a position, never content."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Decoded(NamedTuple):
    """A decoded value, the size in bytes of the text it came from, and the faults it holds (pointer, Fault)."""

    value: Any
    size: int
    faults: tuple[tuple[str, Fault], ...] = ()

    def faults_under(self, prefix: str) -> tuple[tuple[str, Fault], ...]:
        """The faults at `prefix` (a JSON Pointer) or inside it."""
        if not prefix:
            return self.faults
        return tuple(f for f in self.faults if f[0] == prefix or f[0].startswith(prefix + "/"))


# -- the hooks: each bad value becomes a Fault, counted per thread so the clean path never walks the tree --------
class _Count(threading.local):
    count = 0  # Faults made by this thread's decodes (a decode compares it before and after)


_local = _Count()


def _fault(code: str) -> Fault:
    _local.count += 1
    return Fault(code)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                obj[key] = _fault(DUPLICATE_KEY)
            seen.add(key)
    return obj


def _float(text: str) -> Any:
    value = float(text)
    return _fault(NON_FINITE) if value in (float("inf"), float("-inf")) else value


def _int(text: str) -> Any:
    try:
        value = int(text)
    except ValueError:  # longer than sys.get_int_max_str_digits(): far beyond any double
        return _fault(NON_FINITE)
    return _fault(NON_FINITE) if abs(value) > _MAX_DOUBLE else value


def _constant(name: str) -> Any:  # NaN, Infinity, -Infinity
    return _fault(NON_FINITE)


# Built once: `json.loads` with options builds a new decoder on every call.
_decoder = json.JSONDecoder(object_pairs_hook=_object, parse_float=_float, parse_int=_int, parse_constant=_constant)
# A surrogate written as an escape; only then can a decoded string hold a lone one (valid pairs decode to one
# character, and UTF-8 text cannot carry surrogates at all).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_JSON_WHITESPACE = " \t\n\r"


def decode(text: bytes | str) -> Decoded:
    """Decode JSON text (UTF-8 bytes, one leading BOM tolerated, or str). Raises NotJson."""
    if isinstance(text, str):
        size = len(text.encode("utf-8", "surrogatepass"))
        may_hold_surrogates = _SURROGATE_ESCAPE.search(text) is not None or _SURROGATE.search(text) is not None
    else:
        size = len(text)
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NotJson("NotUtf8", f"not UTF-8 text (byte {exc.start})") from None
        may_hold_surrogates = _SURROGATE_ESCAPE.search(text) is not None
    if text[:1] == "\ufeff":
        text = text[1:]
    local = _local
    before = local.count
    try:
        value = _loads(text)
    except json.JSONDecodeError as exc:
        raise NotJson("NotJson", f"not valid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise NotJson("TooDeep", "the JSON text is nested too deeply") from None
    if may_hold_surrogates:
        value = _mark_surrogates(value)
    elif local.count == before:
        return Decoded(value, size)
    return Decoded(value, size, tuple(_find_faults(value)))


def _loads(text: str) -> Any:
    """`_decoder.decode(text)`: the JSON whitespace around the value (the four characters the decoder skips) is
    stripped by `str.strip` and the value read with `raw_decode`; anything else (an error, extra data) goes to
    `decode` itself, so the error and its position are the decoder's own."""
    body = text.strip(_JSON_WHITESPACE)
    try:
        value, end = _decoder.raw_decode(body)
    except json.JSONDecodeError:
        end = -1
    return value if end == len(body) else _decoder.decode(text)


def has_surrogate(text: str) -> bool:
    """Does `text` hold a lone UTF-16 surrogate (a str that cannot be encoded as UTF-8)?"""
    return _SURROGATE.search(text) is not None


def _mark_surrogates(value: Any) -> Any:
    """Replace strings holding a lone surrogate by a Fault, and objects whose keys hold one (the key cannot be
    named in a pointer) by a Fault too. Iterative: the nesting may be as deep as the decoder allowed."""
    if isinstance(value, str):
        return Fault(INVALID_UNICODE) if has_surrogate(value) else value
    root: list[Any] = [value]
    stack: list[tuple[Any, Any]] = [(root, 0)]
    while stack:
        container, key = stack.pop()
        item = container[key]
        if isinstance(item, str):
            if has_surrogate(item):
                container[key] = Fault(INVALID_UNICODE)
        elif isinstance(item, dict):
            if any(has_surrogate(k) for k in item):
                container[key] = Fault(INVALID_UNICODE)
            else:
                stack.extend((item, k) for k in item)
        elif isinstance(item, list):
            stack.extend((item, i) for i in range(len(item)))
    return root[0]


MAX_SEGMENT = 64  # characters of a key a pointer repeats: a key is the sender's text, never echoed whole


def pointer(parts: Any) -> str:
    """RFC 6901 JSON Pointer for a sequence of keys and indexes; a key longer than MAX_SEGMENT characters is cut
    there and marked with "…" (the answer must not grow with the input).

    >>> pointer(["Tags", "a/b~c"]), pointer(["k" * 70])[-3:]
    ('/Tags/a~1b~0c', 'kk…')
    """
    return "".join("/" + _segment(str(p)).replace("~", "~0").replace("/", "~1") for p in parts)


def _segment(key: str) -> str:
    return key if len(key) <= MAX_SEGMENT else key[:MAX_SEGMENT] + "\u2026"


def _find_faults(value: Any) -> Iterator[tuple[str, Fault]]:
    """(pointer, Fault) in document order."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, Fault):
            yield path, item
        elif isinstance(item, dict):
            stack.extend((path + pointer((k,)), v) for k, v in reversed(list(item.items())))
        elif isinstance(item, list):
            stack.extend((f"{path}/{i}", v) for i, v in reversed(list(enumerate(item))))


# How deep `scrub` copies containers (orjson's own limit): one nested deeper becomes None, so that neither `scrub`
# nor the standard encoder after it can run out of stack. An IMM answer may hold such a value (`json.loads` and the
# answer check take it), and a batch's Tags go into `diff.from` as they are.
MAX_DEPTH = 255


def scrub(value: Any, _depth: int = 0) -> Any:
    """A copy of `value` that strict JSON can carry: Faults and non-finite numbers become None, lone surrogates
    U+FFFD, containers nested more than MAX_DEPTH levels deep None. For the rare fallback paths that must write
    whatever they were given (log lines, HTTP answers)."""
    if isinstance(value, Fault):
        return None
    if isinstance(value, float):
        return value if -_MAX_DOUBLE <= value <= _MAX_DOUBLE else None
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value) if has_surrogate(value) else value
    if isinstance(value, (dict, list, tuple)) and _depth >= MAX_DEPTH:
        return None
    if isinstance(value, dict):
        return {scrub(str(k)): scrub(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v, _depth + 1) for v in value]
    return value


_compact = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def dumps(value: Any) -> str:
    """Compact strict JSON (no NaN/Infinity; text that encodes as UTF-8). Anything it cannot carry is scrubbed
    instead of raising: an answer is always written."""
    try:
        text = _compact.encode(value)
        if _SURROGATE.search(text) is None:
            return text
    except (ValueError, TypeError, RecursionError):  # RecursionError: nested too deeply for the encoder
        pass
    return _compact.encode(scrub(value))
