"""The sink interface: every outcome of an invocation is handed to each configured sink."""

from __future__ import annotations

from typing import NamedTuple, Protocol

from imm_batch_updater.outcome import Outcome


class Invocation(NamedTuple):
    """What the sinks may say about the invocation an outcome belongs to (immutable; built per invocation)."""

    request_id: str | None
    function_name: str | None
    source: str


class Sink(Protocol):
    name: str

    def emit(self, outcomes: list[Outcome], invocation: Invocation, duration_ms: int) -> None:
        """Deliver the outcomes. May raise: the caller logs the failure (the log line is already written)."""
        ...
