"""Where outcomes go. The JSON log line (`sinks.log`) is always written first; the optional sinks are configured
by environment variables (docs/deploy.md) and built per invocation, because they sign with the invocation's
credentials:

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
"""

from __future__ import annotations

from typing import Any

from imm_batch_updater import logs
from imm_batch_updater.config import Settings
from imm_batch_updater.sinks.base import Sink

_warned: set[str] = set()


def configured(ctx: Any) -> list[Sink]:
    """The optional sinks the environment asks for (none by default)."""
    if not Settings.current().result_sinks:
        return []  # the common case: skip parsing the sink settings
    from imm_batch_updater.sinks.common import SinkConfigError, SinkSettings

    settings = SinkSettings.from_env()
    for warning in settings.warnings:
        if warning not in _warned:
            _warned.add(warning)
            logs.warning("configuration", detail=warning)
    builders = []
    if settings.mns_topic:
        from imm_batch_updater.sinks import mns_topic

        builders.append(mns_topic.build)
    if settings.webhook_url:
        from imm_batch_updater.sinks import webhook

        builders.append(webhook.build)
    if settings.fc_function:
        from imm_batch_updater.sinks import fc_function

        builders.append(fc_function.build)
    sinks: list[Sink] = []
    for build in builders:
        try:
            sinks.append(build(settings, ctx))
        except SinkConfigError as exc:
            logs.error(
                "sink refused" if exc.refused else "sink not configured",
                request_id=getattr(ctx, "request_id", None),
                sink=exc.sink,
                reason=exc.reason,
            )
    return sinks
