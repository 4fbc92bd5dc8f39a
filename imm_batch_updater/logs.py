"""One JSON object per line on stdout, for everything the function writes itself (FC ships stdout to SLS;
set `logBeginRule: None` so lines are not merged).

Only the fields passed in are written: callers pass ids, statuses and error codes, never credentials, tokens,
signatures, webhook secrets or request headers.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any, TextIO

from imm_batch_updater import strictjson

_lock = threading.Lock()
# Built once: `json.dumps` with options builds a new encoder on every call. Strict: a line is always JSON.
_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str, allow_nan=False)
_second: tuple[int, str] = (-1, "")  # (whole second, its "%Y-%m-%dT%H:%M:%S"): strftime once a second


def timestamp() -> str:
    """The `ts` of a line written now."""
    global _second
    now = time.time()
    cached = _second
    if cached[0] != int(now):
        cached = _second = (int(now), time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)))
    return f"{cached[1]}.{int(now % 1 * 1000):03d}Z"


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
    try:
        text = "\n".join(map(_encoder.encode, records)) + "\n"
    except ValueError:  # NaN or Infinity somewhere: write what strict JSON can carry
        text = "".join([_encoder.encode(strictjson.scrub(r)) + "\n" for r in records])
    out = stream or sys.stdout
    with _lock:
        try:
            out.write(text)
        except UnicodeEncodeError:  # a lone surrogate somewhere (a bug: strict input keeps them out)
            out.write("".join([_encoder.encode(strictjson.scrub(r)) + "\n" for r in records]))
        out.flush()


def info(msg: str, **fields: Any) -> None:
    log("INFO", msg, **fields)


def warning(msg: str, **fields: Any) -> None:
    log("WARNING", msg, **fields)


def error(msg: str, **fields: Any) -> None:
    log("ERROR", msg, **fields)
