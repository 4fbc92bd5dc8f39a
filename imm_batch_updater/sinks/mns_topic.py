"""Publish outcomes to an MNS topic (aliyun-mns-sdk), signed with the invocation's STS credentials.

One message per outcome (not one per invocation):
- the message tag is the outcome's status, so a subscription can select with `filterTag` (e.g. only `rejected`),
  and the user properties `status`, `final`, `dead_letter` (and `project`, `batch_id`) say the same for
  consumers that read properties;
- a dead letter is one message, which a queue subscribed to the topic keeps for inspection and re-driving; when
  the invocation's time would not last for every message, the dead letters are published and the others skipped;
- a message stays far below MNS's 64 KB limit even for a 100-document delivery; one that is over it is sent
  `truncate`d (no `diff`, no `error.details`, `"truncated": true`). A topic can be created with a smaller
  MaximumMessageSize (1 KB to 64 KB), which MNS enforces with 400 `InvalidArgument` (never worth the same
  request again): the notification is then sent once more truncated (when that removes anything from it), and
  when the topic refuses that too it is left out and the others are still published; the sink reports a final
  `NotificationTooLarge` failure naming the topic and its MaximumMessageSize (the outcome itself, already in the
  log, is unaffected).

The body is JSON: `{"type": "imm_batch_updater.outcome", "timestamp", "data": {"request_id", "function", "source",
"duration_ms", "result": {...}}}` where `result` is the outcome as the function returns it plus `final`,
`dead_letter` and `source`.

Settings: RESULT_MNS_TOPIC (topic name), RESULT_MNS_ENDPOINT (default `https://{account_id}.mns.{region}
.aliyuncs.com`, `{region}-internal` with IMM_NETWORK=vpc, in the function's own region: `context.region`, else
FC_REGION, never IMM_REGION; `http://127.0.0.1:PORT` for the local emulator),
RESULT_MNS_FILTER (else RESULT_SINK_FILTER). The topic must not be one that triggers the function
(TRIGGER_MNS_TOPICS): such a configuration is refused. Calls go through `mns_client` (timeouts, error codes).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from imm_batch_updater import mns_client
from imm_batch_updater.config import sink_filter, text, topic_name
from imm_batch_updater.context import Context, EndpointUnknown, endpoint
from imm_batch_updater.outcome import Outcome
from imm_batch_updater.retry import MIN_ATTEMPT_S
from imm_batch_updater.sinks.base import (
    Invocation,
    SinkConfigError,
    SinkDeliveryError,
    deliver,
    is_dead_letter,
    notification_one,
    report_failure,
    select,
    truncate,
)
from imm_batch_updater.strictjson import dumps

name = "mns_topic"
variables: tuple[str, ...] = ("RESULT_MNS_TOPIC", "RESULT_MNS_ENDPOINT", "RESULT_MNS_FILTER")
MAX_MESSAGE_BYTES = 65536  # MNS's default (and maximum) message size


@dataclass(frozen=True)
class Config:
    topic: str
    endpoint: str | None = None
    filter: str | None = None
    name: str = name

    def build(self, ctx: Context) -> MnsTopicSink:
        topic = topic_name(self.topic)
        if not topic:
            raise SinkConfigError(name, "RESULT_MNS_TOPIC names no topic", refused=False)
        if topic.lower() in {t.lower() for t in ctx.settings.trigger_mns_topics}:
            raise SinkConfigError(
                name,
                "RESULT_MNS_TOPIC is a topic that triggers this function (TRIGGER_MNS_TOPICS): publishing to it "
                "would loop; nothing is published to it",
                refused=True,
            )
        return MnsTopicSink(topic, endpoint_for(self, ctx), self.filter or ctx.settings.sink_filter, ctx)


def configure(env: Mapping[str, str], warnings: list[str]) -> Config | None:
    topic = text(env, "RESULT_MNS_TOPIC")
    if topic is None:
        return None
    return Config(
        topic,
        text(env, "RESULT_MNS_ENDPOINT"),
        sink_filter(env, "RESULT_MNS_FILTER", warnings),
    )


def endpoint_for(config: Config, ctx: Context) -> str:
    try:
        return endpoint(
            "mns",
            config.endpoint,
            variable="RESULT_MNS_ENDPOINT",
            region=ctx.region,  # the function's own region, not IMM_REGION
            account=ctx.account_id,
            network=ctx.settings.imm_network,
        ).url
    except EndpointUnknown as exc:
        raise SinkConfigError(name, f"RESULT_MNS_TOPIC is set but {exc}", refused=False) from None


def classify(exc: BaseException) -> SinkDeliveryError:
    code, message, retriable = mns_client.classify(exc, "the message")
    return SinkDeliveryError(code, message, retriable=retriable)


def _notification(outcome: Outcome, invocation: Invocation, duration_ms: int) -> tuple[str, dict[str, Any] | None]:
    """The notification to publish, `truncate`d when it is over MNS's 64 KB, and the notification it was made from
    while truncating it could still make it smaller (None once it is truncated)."""
    note = notification_one(outcome, invocation, duration_ms)
    body = dumps(note)
    if len(body.encode("utf-8")) <= MAX_MESSAGE_BYTES:
        return body, note
    # Only error details and diffs can grow: drop them, keep status, ids and the error code.
    return _cut(note) or body, None


def _body(outcome: Outcome, invocation: Invocation, duration_ms: int) -> str:
    """The notification as first published (`truncate`d when it is over MNS's 64 KB)."""
    return _notification(outcome, invocation, duration_ms)[0]


def _cut(note: dict[str, Any]) -> str | None:
    """`note` `truncate`d (changed in place), or None when truncation removes nothing from it: the same notification,
    only marked `truncated` (and stamped anew, were it built again), is no smaller."""
    result = note["data"]["result"]
    before = dumps(result)
    truncate(result)
    if dumps({k: v for k, v in result.items() if k != "truncated"}) == before:
        return None
    return dumps(note)


def _sent(body: str, publish: Callable[..., None], ctx: Context) -> bool:
    """Publish `body`: True, or False when the topic refuses it for its size (any other refusal raises)."""
    try:
        deliver(ctx, partial(publish, body=body), classify)
    except SinkDeliveryError as error:
        if error.code != mns_client.TOO_LARGE_CODE:
            raise
        return False
    return True


class MnsTopicSink:
    name = name

    def __init__(self, topic: str, url: str, filter: str, ctx: Context) -> None:
        self.topic = topic
        self.endpoint = url
        self.filter = filter
        self.ctx = ctx

    def emit(self, outcomes: list[Outcome], invocation: Invocation, duration_ms: int) -> None:
        chosen = select(outcomes, self.filter)
        if not chosen:
            return
        from mns.message_property import MessagePropertyValue
        from mns.topic import TopicMessage

        account = mns_client.account(self.endpoint, self.ctx.credentials())  # fresh for this invocation
        topic = account.get_topic(self.topic)
        published = 0
        # One request per message: a large delivery (a fan-out's thousands of `queued` results) can take longer
        # than the invocation has left. Messages go in delivery order while there is time; once what is left would
        # not cover the dead letters still to come (each at twice the pace measured so far over every outcome tried,
        # and at least the shortest attempt the retry helper starts), the other outcomes are skipped, so the time
        # never runs out on the final failures operators must see.
        dead_left = sum(1 for o in chosen if is_dead_letter(o))
        skipped = 0
        tried = 0  # outcomes whose notification was sent (published, or refused for its size)
        too_large: list[int] = []  # sizes of the notifications the topic refused even truncated
        started = time.monotonic()
        try:
            for outcome in chosen:
                dead = is_dead_letter(outcome)
                if dead_left and not dead:
                    # Paced on every outcome tried, refused ones too: a topic refusing each for its size (nothing
                    # published yet) takes time all the same. Before the first, the shortest attempt stands in.
                    pace = 2 * (time.monotonic() - started) / tried if tried else 0.0
                    need = (dead_left + 1) * (pace if pace > MIN_ATTEMPT_S else MIN_ATTEMPT_S)
                    if self.ctx.sinks_deadline.remaining_s() < need:
                        skipped += 1
                        continue
                body, note = _notification(outcome, invocation, duration_ms)
                properties = {
                    "status": MessagePropertyValue.create_string(outcome.status.value),
                    "final": MessagePropertyValue.create_boolean(outcome.final),
                    "dead_letter": MessagePropertyValue.create_boolean(is_dead_letter(outcome)),
                }
                if outcome.project:
                    properties["project"] = MessagePropertyValue.create_string(outcome.project)
                if outcome.batch_id:
                    properties["batch_id"] = MessagePropertyValue.create_string(outcome.batch_id)

                tag = outcome.status.value

                def publish(timeout_s: float, body: str, props: dict[str, Any] = properties, tag: str = tag) -> None:
                    message = TopicMessage(body, message_tag=tag)
                    message.set_user_properties(props)
                    mns_client.set_timeout(account.mns_client, timeout_s)
                    topic.publish_message(message)

                dead_left -= dead
                tried += 1
                if not _sent(body, publish, self.ctx):
                    # Over the topic's MaximumMessageSize (it can be below 64 KB): never worth sending again as it
                    # is. Sent once more truncated, as a notification over 64 KB is; still refused, it is left
                    # out (its log line has it all) and the others are published: they may fit.
                    # Not when truncating removes nothing from it (already truncated, or nothing to remove).
                    cut = _cut(note) if note is not None else None
                    if cut is None or not _sent(cut, publish, self.ctx):
                        too_large.append(len((cut or body).encode("utf-8")))
                        continue
                published += 1
            if too_large:
                also = f"; {skipped} others skipped for lack of time" if skipped else ""
                raise SinkDeliveryError(
                    "NotificationTooLarge",
                    f"RESULT_MNS_TOPIC {self.topic!r} refused {len(too_large)} outcome notification(s) for their size "
                    f"even truncated (the smallest {min(too_large)} bytes): over the topic's MaximumMessageSize, so "
                    f"that is below {min(too_large)} bytes; raise it (MNS allows up to 65536). Their outcomes are in "
                    f"the log{also}",
                    retriable=False,
                )
            if skipped:
                raise SinkDeliveryError(
                    "DeadlineExceeded",
                    f"no time left to publish {skipped} outcomes that are not dead letters (the dead letters were)",
                    retriable=False,
                )
        except SinkDeliveryError as error:
            # Stop at the first message that could not be published (a missing topic or a denied key would
            # refuse the rest too), except for its size (above); the log line of every outcome is already written.
            report_failure(self.name, error, invocation.request_id, published=published, total=len(chosen))
            raise
