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

Adding a sink: a module with a `SinkType` (its name, variables, `configure`) and a config whose `build` makes the
sink, then one entry in `SINKS`.
"""

from __future__ import annotations

from imm_batch_updater import logs
from imm_batch_updater.context import Context
from imm_batch_updater.sinks import fc_function, mns_topic, webhook
from imm_batch_updater.sinks.base import Invocation, Sink, SinkConfigError, SinkType
from imm_batch_updater.sinks.log import LogSink

__all__ = ["SINKS", "Invocation", "LogSink", "Sink", "configured_sinks"]

# The optional sinks, in the order they are sent to.
SINKS: tuple[SinkType, ...] = (mns_topic, webhook, fc_function)  # modules: each is a SinkType


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
    return sinks
