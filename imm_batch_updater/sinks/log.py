"""The always-on sink: one JSON log line per outcome on stdout."""

from __future__ import annotations

from imm_batch_updater import logs
from imm_batch_updater.outcome import Outcome
from imm_batch_updater.sinks.base import Invocation


class LogSink:
    name = "log"

    def emit(self, outcomes: list[Outcome], invocation: Invocation, duration_ms: int) -> None:
        # One record per outcome, built directly (this runs for every update: `logs.log(**fields)` would pack and
        # filter the same fields through keyword arguments).
        for o in outcomes:
            error = o.error
            record = {
                "ts": logs.timestamp(),
                "level": "INFO" if o.ok else ("WARNING" if o.final else "ERROR"),
                "msg": "outcome",
                "request_id": invocation.request_id,
                "function": invocation.function_name,
                "source": o.source or invocation.source,
                "message_id": o.message_id,
                "index": o.index,
                "project": o.project,
                "batch_id": o.batch_id,
                "status": o.status,
                "final": o.final,
                "resumed": o.resumed if o.status == "updated" else None,
                "error_code": error.code if error else None,
                "error_message": error.message if error else None,
                "attempts": o.attempts,
                "imm_request_id": o.request_id,
                "duration_ms": duration_ms,
            }
            logs.write({k: v for k, v in record.items() if v is not None})
