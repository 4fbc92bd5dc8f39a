"""Where outcomes go. The JSON log line (`sinks.log`) is always written; other sinks are configured by
environment variables (see the README) and built per invocation, because they sign with the invocation's
credentials."""

from __future__ import annotations

from typing import Any

from imm_batch_updater.sinks.base import Sink


def configured(ctx: Any) -> list[Sink]:
    """The optional sinks the environment asks for (none by default)."""
    return []
