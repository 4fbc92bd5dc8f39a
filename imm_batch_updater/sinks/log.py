"""The always-on sink: one JSON log line per outcome on stdout (FC ships stdout to SLS).

The line carries the audit trail of a change: `diff` (`{field: {"from", "to"}}`) on every `updated` made after
reading the batch, so a fleet change can be audited in SLS and reverted from its log lines alone.
"""

from __future__ import annotations

from typing import Any

from imm_batch_updater import logs
from imm_batch_updater.outcome import Outcome, Status
from imm_batch_updater.sinks.base import Invocation


class LogSink:
    name = "log"

    def emit(self, outcomes: list[Outcome], invocation: Invocation, duration_ms: int) -> None:
        # Built directly, fields that are None left out (this runs for every update: `logs.log(**fields)` would pack
        # and filter the same fields through keyword arguments).
        for o in outcomes:
            record: dict[str, Any] = {
                "ts": logs.timestamp(),
                "level": "INFO" if o.ok or o.status is Status.QUEUED else ("WARNING" if o.final else "ERROR"),
                "msg": "outcome",
            }
            _put(record, "request_id", invocation.request_id)
            _put(record, "function", invocation.function_name)
            record["source"] = o.source or invocation.source
            _put(record, "message_id", o.message_id)
            _put(record, "index", o.index)
            _put(record, "project", o.project)
            _put(record, "batch_id", o.batch_id)
            record["status"] = o.status.value
            record["final"] = o.final
            if o.status is Status.UPDATED:
                record["resumed"] = bool(o.resumed)
            _put(record, "state", o.state)
            _put(record, "diff", o.diff)
            _put(record, "queue", o.queue)
            if o.error is not None:
                record["error_code"] = o.error.code
                record["error_message"] = o.error.message
            if o.duplicate:
                record["duplicate"] = True
            record["attempts"] = o.attempts
            _put(record, "imm_request_id", o.request_id)
            record["duration_ms"] = duration_ms
            logs.write(record)


def _put(record: dict[str, Any], name: str, value: Any) -> None:
    if value is not None:
        record[name] = value
