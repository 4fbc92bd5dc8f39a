"""The always-on sink: one JSON log line per outcome on stdout (FC ships stdout to SLS).

The line carries the audit trail of a change: `diff` (`{field: {"from", "to"}}`) on every `updated` made after
reading the batch, so a fleet change can be audited in SLS and reverted from its log lines alone.
"""

from __future__ import annotations

from typing import Any

from imm_batch_updater import logs
from imm_batch_updater.outcome import VALUES, Outcome, Status
from imm_batch_updater.sinks.base import Invocation


def _level(status: Status) -> str:
    return "INFO" if status.ok or status is Status.QUEUED else ("WARNING" if status.final else "ERROR")


# What a line says for each status, looked up once per outcome: (level, status as a plain str, final).
_LINE = {status: (_level(status), VALUES[status], status.final) for status in Status}


def write(
    outcomes: list[Outcome], request_id: str | None, function: str | None, default_source: str, duration_ms: int
) -> None:
    """The outcome lines of one invocation, written in one piece (`App.report` calls this first, before any
    optional sink, and without building their `Invocation`)."""
    # Built field by field, the fields that are None left out (this runs for every update).
    ts = logs.timestamp()
    records = []
    for o in outcomes:
        level, status, final = _LINE[o.status]
        record: dict[str, Any] = {"ts": ts, "level": level, "msg": "outcome"}
        if request_id is not None:
            record["request_id"] = request_id
        if function is not None:
            record["function"] = function
        record["source"] = o.source or default_source
        if o.message_id is not None:
            record["message_id"] = o.message_id
        if o.index is not None:
            record["index"] = o.index
        if o.project is not None:
            record["project"] = o.project
        if o.batch_id is not None:
            record["batch_id"] = o.batch_id
        record["status"] = status
        record["final"] = final
        if o.status is Status.UPDATED:
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
            if o.error.details is not None:  # which fields: for event triggers the log is the only trace
                record["error_details"] = [d.to_dict() for d in o.error.details]
        if o.duplicate:
            record["duplicate"] = True
        if o.unchanged:
            record["unchanged"] = True
        record["attempts"] = o.attempts
        if o.request_id is not None:
            record["imm_request_id"] = o.request_id
        record["duration_ms"] = duration_ms
        records.append(record)
    logs.write_all(records)


class LogSink:
    """The same lines as a `Sink`."""

    name = "log"

    def emit(self, outcomes: list[Outcome], invocation: Invocation, duration_ms: int) -> None:
        request_id, function, source = invocation
        write(outcomes, request_id, function, source, duration_ms)
