"""Turn a delivered message into update requests: decode JSON, split bulk arrays, validate each document.

Every input ends as either an `UpdateRequest` (valid, ready to apply) or an `invalid` `Outcome` that names the
JSON Pointer of each problem; nothing is dropped silently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from imm_batch_updater import outcome as oc
from imm_batch_updater.config import Settings
from imm_batch_updater.outcome import ErrorInfo, Outcome
from imm_batch_updater.sources.base import Message
from imm_batch_updater.validation import validate

CHANGE_FIELDS = ("Input", "Actions", "Tags")


@dataclass(frozen=True)
class UpdateRequest:
    """One valid update document."""

    project: str
    batch_id: str
    changes: dict[str, Any]  # the subset of Input / Actions / Tags the document gives, in IMM's wire shape
    resume: bool = False
    dry_run: bool = False
    source: str | None = None
    message_id: str | None = None
    index: int | None = None  # position in a bulk array

    @property
    def key(self) -> tuple[str, str]:
        return (self.project, self.batch_id)

    @classmethod
    def from_document(cls, doc: dict[str, Any], **meta: Any) -> UpdateRequest:
        return cls(
            project=doc["ProjectName"],
            batch_id=doc["Id"],
            changes={k: doc[k] for k in CHANGE_FIELDS if k in doc},
            resume=bool(doc.get("Resume", False)),
            dry_run=bool(doc.get("DryRun", False)),
            **meta,
        )

    def fingerprint(self) -> str:
        """Identity of the whole document, used to apply exact duplicates in one delivery only once."""
        body = {"p": self.project, "i": self.batch_id, "c": self.changes, "r": self.resume, "d": self.dry_run}
        return json.dumps(body, sort_keys=True, separators=(",", ":"))


Item = UpdateRequest | Outcome


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _invalid(message: Message, text: str, code: str, details: list[dict[str, str]], **kw: Any) -> Outcome:
    return oc.invalid(text, details, code=code, source=message.source, message_id=message.message_id, **kw)


# Built once: `json.loads` with an option builds a new decoder on every call.
_strict_decoder = json.JSONDecoder(parse_constant=_reject_constant)


def utf8_text(raw: bytes) -> str:
    """`raw.decode("utf-8-sig")` (one leading BOM dropped) without that codec's Python-level wrapper."""
    text = raw.decode("utf-8")
    return text[1:] if text.startswith("\ufeff") else text


def decode_json(body: bytes | str) -> Any:
    """Strict JSON: UTF-8 (a BOM is tolerated), no NaN/Infinity. Raises ValueError or RecursionError."""
    if isinstance(body, bytes):
        body = utf8_text(body)
    if body.startswith("\ufeff"):  # what json.loads says about a second BOM
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", body, 0)
    return _strict_decoder.decode(body)


def parse_message(message: Message, settings: Settings) -> list[Item]:
    """The update requests (or invalid outcomes) in one message, in delivery order."""
    if message.failure is not None:
        f = message.failure
        details = [{"path": f.path, "message": f.message}] if f.status == oc.INVALID else None
        return [
            Outcome(
                status=f.status,
                error=ErrorInfo(f.code, f.message, details),
                source=message.source,
                message_id=message.message_id,
            )
        ]
    if message.body is not None:
        if len(message.body) > settings.max_body_bytes:
            text = f"the message is larger than {settings.max_body_bytes} bytes"
            return [_invalid(message, text, "TooLarge", [{"path": "", "message": text}])]
        try:
            # Already decoded by the source with the same strict decoder? (null is decoded again: same result)
            parsed = message.parsed if message.parsed is not None else decode_json(message.body)
        except UnicodeDecodeError:
            text = "the message is not UTF-8 text"
            return [_invalid(message, text, "NotJson", [{"path": "", "message": text}])]
        except RecursionError:
            text = "the document is nested too deeply"
            return [_invalid(message, text, "TooDeep", [{"path": "", "message": text}])]
        except ValueError as exc:
            # JSONDecodeError's message names the position, never the content.
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            where = f" (line {exc.lineno} column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
            text = f"not valid JSON: {reason}{where}"
            return [_invalid(message, "the message is not valid JSON", "NotJson", [{"path": "", "message": text}])]
    else:
        parsed = message.parsed
    return parse_documents(parsed, settings, source=message.source, message_id=message.message_id)


def parse_documents(parsed: Any, settings: Settings, source: str | None, message_id: str | None) -> list[Item]:
    meta = {"source": source, "message_id": message_id}
    if isinstance(parsed, list):
        if not parsed:
            text = "an empty array holds no update"
            return [oc.invalid(text, [{"path": "", "message": text}], code="EmptyArray", **meta)]
        if len(parsed) > settings.max_documents:
            text = f"at most {settings.max_documents} documents per message (MAX_DOCUMENTS)"
            return [oc.invalid(text, [{"path": "", "message": text}], code="TooManyDocuments", **meta)]
        return [_parse_one(doc, settings, index=i, **meta) for i, doc in enumerate(parsed)]
    return [_parse_one(parsed, settings, index=None, **meta)]


def _parse_one(doc: Any, settings: Settings, index: int | None, **meta: Any) -> Item:
    if isinstance(doc, dict) and settings.imm_project and "ProjectName" not in doc:
        doc = {"ProjectName": settings.imm_project, **doc}
    problems = validate(doc)
    if problems:
        # Paths are relative to the document (a bulk item's result carries its `index`).
        return oc.invalid(
            "the update document fails the schema",
            [p.to_dict() for p in problems],
            code="SchemaViolation",
            project=_str_field(doc, "ProjectName"),
            batch_id=_str_field(doc, "Id"),
            index=index,
            **meta,
        )
    return UpdateRequest.from_document(doc, index=index, **meta)


def _str_field(doc: Any, name: str) -> str | None:
    value = doc.get(name) if isinstance(doc, dict) else None
    return value if isinstance(value, str) and 0 < len(value) <= 128 else None
