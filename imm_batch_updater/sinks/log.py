"""The always-on sink: one JSON log line per outcome on stdout (FC ships stdout to SLS).

The line carries the audit trail of a change: `diff` (`{field: {"from", "to"}}`) on every `updated` made after
reading the batch, so a fleet change can be audited in SLS and reverted from its log lines alone.
"""

from __future__ import annotations

from typing import Any

from imm_batch_updater import logs
from imm_batch_updater.outcome import Outcome, Status
from imm_batch_updater.sinks.base import Invocation

_LEVEL = {status: "INFO" if status.ok else ("WARNING" if status.final else "ERROR") for status in Status}
_LEVEL[Status.QUEUED] = "INFO"
_FINAL = {status: status.final for status in Status}


class LogSink:
    name = "log"

    def emit(self, outcomes: list[Outcome], invocation: Invocation, duration_ms: int) -> None:
        # Built field by field, the fields that are None left out (this runs for every update), and written in one
        # piece per delivery.
        ts = logs.timestamp()
        request_id, function, default_source = invocation
        head: dict[str, Any] = {}  # what every line of this invocation says first
        if request_id is not None:
            head["request_id"] = request_id
        if function is not None:
            head["function"] = function
        records = []
        for o in outcomes:
            status = o.status
            record: dict[str, Any] = {"ts": ts, "level": _LEVEL[status], "msg": "outcome", **head}
            record["source"] = o.source or default_source
            if o.message_id is not None:
                record["message_id"] = o.message_id
            if o.index is not None:
                record["index"] = o.index
            if o.project is not None:
                record["project"] = o.project
            if o.batch_id is not None:
                record["batch_id"] = o.batch_id
            record["status"] = status.value
            record["final"] = _FINAL[status]
            if status is Status.UPDATED:
                record["resumed"] = bool(o.resumed)
            if o.state is not None:
                record["state"] = o.state
            if o.diff is not None:
                record["diff"] = o.diff
            if o.queue is not None:
                record["queue"] = o.queue
            if o.error is not None:
                record["error_code"] = o.error.code
                record["error_message"] = o.error.message
            if o.duplicate:
                record["duplicate"] = True
            record["attempts"] = o.attempts
            if o.request_id is not None:
                record["imm_request_id"] = o.request_id
            record["duration_ms"] = duration_ms
            records.append(record)
        logs.write_all(records)
