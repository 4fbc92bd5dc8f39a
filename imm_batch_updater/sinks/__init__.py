"""Where outcomes go. The JSON log line (`sinks.log`) is always written first; the optional sinks are configured
by environment variables (README "Notification sinks") and built per invocation, because they sign with the
invocation's credentials:

| sink | set | module |
| --- | --- | --- |
| MNS topic | RESULT_MNS_TOPIC (+ RESULT_MNS_ENDPOINT) | `sinks.mns_topic` (one message per outcome) |
| webhook | RESULT_WEBHOOK_URL + RESULT_WEBHOOK_SECRET | `sinks.webhook` (one signed POST per invocation) |
| FC function | RESULT_FC_FUNCTION (+ RESULT_FC_ENDPOINT) | `sinks.fc_function` (async invoke, FC 3.0 or 2.0) |

RESULT_SINK_FILTER (`all` | `failures` | `dead_letters`, each also per sink: RESULT_MNS_FILTER, ...) picks the
outcomes they receive; every mode includes the dead letters (final failures). A configuration that could loop
(the result topic is a trigger topic named in TRIGGER_MNS_TOPICS, the webhook secret is one the function accepts,
the result function is the function itself) is refused: an error is logged on every invocation, that sink sends
nothing, and the outcomes are still logged. SDKs are imported only by the sinks that are configured.

Adding a sink: a module that is a `SinkType` (its `name`, its `variables`, `configure`) with a config whose
`build` makes the sink, then one entry in `SINKS`. A sink's module is imported only when the variable that asks
for it is set: functions without optional sinks never load their code.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import NamedTuple, cast

from imm_batch_updater import logs
from imm_batch_updater.config import text
from imm_batch_updater.context import Context
from imm_batch_updater.sinks.base import Invocation, Sink, SinkConfig, SinkConfigError, SinkType
from imm_batch_updater.sinks.log import LogSink

__all__ = ["SINKS", "Invocation", "LogSink", "Sink", "configure", "configured_sinks"]


class SinkEntry(NamedTuple):
    name: str
    module: str  # the sink's module: a SinkType
    enabled_by: str  # the variable that asks for the sink (the first of the module's `variables`)

    def load(self) -> SinkType:
        return cast(SinkType, importlib.import_module(self.module))


# The optional sinks, in the order they are sent to.
SINKS = (
    SinkEntry("mns_topic", "imm_batch_updater.sinks.mns_topic", "RESULT_MNS_TOPIC"),
    SinkEntry("webhook", "imm_batch_updater.sinks.webhook", "RESULT_WEBHOOK_URL"),
    SinkEntry("fc_function", "imm_batch_updater.sinks.fc_function", "RESULT_FC_FUNCTION"),
)


def configure(env: Mapping[str, str], warnings: list[str]) -> tuple[SinkConfig, ...]:
    """Each asked-for sink's settings, parsed by the sink's own module (`config.Settings.from_env` calls this)."""
    configs = []
    for entry in SINKS:
        if text(env, entry.enabled_by) is not None:
            config = entry.load().configure(env, warnings)
            if config is not None:
                configs.append(config)
    return tuple(configs)


def configured_sinks(ctx: Context) -> list[Sink]:
    """The optional sinks this invocation's settings ask for (none by default), each built for it."""
    sinks: list[Sink] = []
    for config in ctx.settings.sinks:
        try:
            sinks.append(config.build(ctx))
        except SinkConfigError as exc:
            logs.error(
                "sink refused" if exc.refused else "sink not configured",
                request_id=ctx.request_id,
                sink=exc.sink,
                reason=exc.reason,
            )
        except Exception as exc:  # a value its parser cannot read (a URL urlsplit refuses, ...): that sink only
            # Never raised out of the report: the outcomes are final and already logged, and an exception here
            # would make the platform retry (and re-notify) every delivery, or lose an HTTP answer.
            logs.error(
                "sink not configured",
                request_id=ctx.request_id,
                sink=config.name,
                reason=f"its settings cannot be used ({type(exc).__name__})",
            )
    return sinks
