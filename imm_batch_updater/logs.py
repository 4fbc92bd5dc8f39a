"""One JSON object per line on stdout, for everything the function writes itself (FC ships stdout to SLS;
set `logBeginRule: None` so lines are not merged).

Only the fields passed in are written: callers pass ids, statuses and error codes, never credentials, tokens,
signatures, webhook secrets or request headers.
"""

from __future__ import annotations

import codecs
import json
import os
import sys
import threading
import time
from typing import Any, TextIO

import orjson

from imm_batch_updater import strictjson

_lock = threading.Lock()
# The fallback for what orjson refuses (lone surrogates, integers beyond 64 bits, non-str keys: none of them can
# come from strict input, so this is the path of a bug) and for a stdout that cannot carry UTF-8: built once,
# strict (a line is always JSON), ASCII-only so that any stream can carry it.
_fallback = json.JSONEncoder(separators=(",", ":"), default=str, allow_nan=False)


def _default(value: Any) -> Any:
    # As the standard encoder would write a NamedTuple (a list), anything else unknown as its str().
    return list(value) if isinstance(value, tuple) else str(value)


# orjson (not the standard encoder): the log line is written for every update, and encoding it was the largest part
# of the function's own work between two IMM calls (see bench/README.md). Output: compact UTF-8, NaN and Infinity
# as null.
_dumps = orjson.dumps
_LINE_OPTIONS = orjson.OPT_APPEND_NEWLINE


def _lines(records: list[dict[str, Any]]) -> bytes:
    return b"".join([_dumps(r, default=_default, option=_LINE_OPTIONS) for r in records])


def _scrubbed(records: list[dict[str, Any]]) -> str:
    return "".join([_fallback.encode(strictjson.scrub(r)) + "\n" for r in records])


_second: tuple[int, str] = (-1, "")  # (whole second, its "%Y-%m-%dT%H:%M:%S"): strftime once a second
# ".000Z" to ".999Z", looked up: formatting the milliseconds with `:03d` on every line took about 1.5-2 us between
# two IMM calls (bench/README.md).
_MILLIS = tuple(f".{ms:03d}Z" for ms in range(1000))


def timestamp() -> str:
    """The `ts` of a line written now."""
    global _second
    now = time.time()
    cached = _second
    if cached[0] != int(now):
        cached = _second = (int(now), time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)))
    return cached[1] + _MILLIS[int(now % 1 * 1000)]


def log(level: str, msg: str, stream: TextIO | None = None, **fields: Any) -> None:
    """One line: ts, level, msg, then the fields that are not None."""
    record = {"ts": timestamp(), "level": level, "msg": msg}
    for name, value in fields.items():
        if value is not None:
            record[name] = value
    write(record, stream)


def write(record: dict[str, Any], stream: TextIO | None = None) -> None:
    """Write a record that is already complete (`ts` first, no None values: see `log`)."""
    write_all([record], stream)


def write_all(records: list[dict[str, Any]], stream: TextIO | None = None) -> None:
    """Write complete records, one line each, in one piece (their lines are never interleaved with others)."""
    if not records:
        return
    data: bytes | None
    try:  # one record (every update's outcome line) without the extra call of `_line`: bench/README.md
        data = _dumps(records[0], default=_default, option=_LINE_OPTIONS) if len(records) == 1 else _lines(records)
    except orjson.JSONEncodeError:
        data = None
    out = stream or sys.stdout
    with _lock:
        if data is not None and (fd := _utf8_fd(out)) is not None:
            # The UTF-8 bytes straight to the file descriptor: what the text stream would write, without encoding
            # the line back and forth through its two buffers (about 2 us of every update: bench/README.md).
            out.flush()  # anything written to the stream before goes out first
            written = os.write(fd, data)
            if written < len(data):  # a write may take fewer bytes than given (a pipe, a signal): the rest follows
                _write_fd(fd, data[written:])
            return
        try:
            out.write(data.decode() if data is not None else _scrubbed(records))
        except UnicodeEncodeError:  # a stdout that is not UTF-8
            out.write(_scrubbed(records))
        out.flush()


_fd_of: tuple[object, int | None] = (None, None)  # (the last stream asked about, its UTF-8 file descriptor or None)


def _utf8_fd(out: TextIO) -> int | None:
    """The file descriptor under `out` when `out` writes UTF-8 to one (a real stdout), else None (a StringIO,
    pytest's capture, a stream in another encoding, an object without `fileno`)."""
    global _fd_of
    cached = _fd_of
    if cached[0] is out:
        return cached[1]
    try:
        fd: int | None = out.fileno() if codecs.lookup(out.encoding).name == "utf-8" else None
    except (AttributeError, OSError, ValueError, LookupError, TypeError):  # io.UnsupportedOperation: no descriptor
        fd = None
    _fd_of = (out, fd)
    return fd


def _write_fd(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def info(msg: str, **fields: Any) -> None:
    log("INFO", msg, **fields)


def warning(msg: str, **fields: Any) -> None:
    log("WARNING", msg, **fields)


def error(msg: str, **fields: Any) -> None:
    log("ERROR", msg, **fields)
