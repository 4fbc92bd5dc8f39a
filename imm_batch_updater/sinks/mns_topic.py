"""Publish outcomes to an MNS topic (aliyun-mns-sdk), signed with the invocation's STS credentials.

One message per outcome (not one per invocation):
- the message tag is the outcome's status, so a subscription can select with `filterTag` (e.g. only `rejected`),
  and the user properties `status`, `final`, `dead_letter` (and `project`, `batch_id`) say the same for
  consumers that read properties;
- a dead letter is one message, which a queue subscribed to the topic keeps for inspection and re-driving;
- a message stays far below MNS's 64 KB limit even for a 100-document delivery.

The body is JSON: `{"type": "imm_batch_updater.outcome", "timestamp", "data": {"request_id", "function", "source",
"duration_ms", "result": {...}}}` where `result` is the outcome as the function returns it plus `final`,
`dead_letter` and `source`.

Settings: RESULT_MNS_TOPIC (topic name), RESULT_MNS_ENDPOINT (default `https://{account_id}.mns.{region}
.aliyuncs.com`, `{region}-internal` with IMM_NETWORK=vpc; `http://127.0.0.1:PORT` for the local emulator),
RESULT_MNS_FILTER (else RESULT_SINK_FILTER). The topic must not be one that triggers the function
(TRIGGER_MNS_TOPICS): such a configuration is refused.
"""

from __future__ import annotations

import json
from typing import Any

from imm_batch_updater.outcome import Outcome
from imm_batch_updater.sinks import common
from imm_batch_updater.sinks.base import Invocation

MAX_MESSAGE_BYTES = 65536  # MNS's default (and maximum) message size
RETRIABLE_CODES = frozenset({"InternalError", "ServiceUnavailable", "ServerBusy", "TimeExpired", "QPSLimitExceeded"})


def endpoint_for(settings: common.SinkSettings, ctx: Any) -> str:
    if settings.mns_endpoint:
        scheme, host = common.split_endpoint(settings.mns_endpoint)
        return f"{scheme}://{host}"
    account, region = common.account_and_region(ctx, "mns_topic", "MNS", "RESULT_MNS_TOPIC", "RESULT_MNS_ENDPOINT")
    suffix = "-internal" if settings.network == "vpc" else ""
    return f"https://{account}.mns.{region}{suffix}.aliyuncs.com"


def build(settings: common.SinkSettings, ctx: Any) -> MnsTopicSink:
    topic = common.topic_name(settings.mns_topic or "")
    if not topic:
        raise common.SinkConfigError("mns_topic", "RESULT_MNS_TOPIC names no topic", refused=False)
    if topic.lower() in {t.lower() for t in settings.trigger_mns_topics}:
        raise common.SinkConfigError(
            "mns_topic",
            "RESULT_MNS_TOPIC is a topic that triggers this function (TRIGGER_MNS_TOPICS): publishing to it "
            "would loop; nothing is published to it",
            refused=True,
        )
    return MnsTopicSink(topic, endpoint_for(settings, ctx), settings, ctx)


def classify(exc: BaseException) -> common.SinkDeliveryError:
    from mns.mns_exception import MNSClientNetworkException, MNSServerException

    if isinstance(exc, MNSClientNetworkException):
        return common.SinkDeliveryError("NetworkError", "no answer from MNS", retriable=True)
    if isinstance(exc, MNSServerException):
        code = str(getattr(exc, "type", "") or "Unknown")
        retriable = code in RETRIABLE_CODES or code.startswith("Throttling")
        return common.SinkDeliveryError(code, "MNS refused the message", retriable=retriable)
    if isinstance(exc, (OSError, TimeoutError)):
        return common.SinkDeliveryError("NetworkError", f"network error: {type(exc).__name__}", retriable=True)
    code = str(getattr(exc, "type", "") or type(exc).__name__)
    return common.SinkDeliveryError(code, "could not publish to MNS", retriable=False)


def _set_timeout(account: Any, timeout_s: float) -> None:
    """The MNS SDK has a connect timeout only for http and none at all for https: set both on its connection."""
    http = account.mns_client.http
    http.connection_timeout = timeout_s
    conn = http.conn
    conn.timeout = timeout_s  # HTTPSConnection.connect uses it (and the socket keeps it for reads)
    if hasattr(conn, "connection_timeout"):
        conn.connection_timeout = timeout_s  # MNSHTTPConnection.connect uses this one
    if getattr(conn, "sock", None) is not None:
        conn.sock.settimeout(timeout_s)


def _body(outcome: Outcome, invocation: Invocation, duration_ms: int) -> str:
    body = json.dumps(common.notification_one(outcome, invocation, duration_ms), ensure_ascii=False)
    if len(body.encode("utf-8")) <= MAX_MESSAGE_BYTES:
        return body
    # Only error details and diffs can grow: drop them, keep status, ids and the error code.
    note = common.notification_one(outcome, invocation, duration_ms)
    result = note["data"]["result"]
    result.pop("diff", None)
    if isinstance(result.get("error"), dict):
        result["error"].pop("details", None)
        result["error"]["message"] = str(result["error"].get("message", ""))[:1000]
    result["truncated"] = True
    return json.dumps(note, ensure_ascii=False)


class MnsTopicSink:
    name = "mns_topic"

    def __init__(self, topic: str, endpoint: str, settings: common.SinkSettings, ctx: Any) -> None:
        self.topic = topic
        self.endpoint = endpoint
        self.settings = settings
        self.ctx = ctx
        self.filter = settings.mns_filter or settings.filter

    def emit(self, outcomes: list[Outcome], invocation: Invocation, duration_ms: int) -> None:
        chosen = common.select(outcomes, self.filter)
        if not chosen:
            return
        from mns.account import Account
        from mns.message_property import MessagePropertyValue
        from mns.topic import TopicMessage

        creds = self.ctx.credentials()  # fresh for this invocation
        account = Account(self.endpoint, creds.access_key_id, creds.access_key_secret, creds.security_token or "")
        topic = account.get_topic(self.topic)
        published = 0
        try:
            for outcome in chosen:
                message = TopicMessage(_body(outcome, invocation, duration_ms), message_tag=outcome.status)
                properties = {
                    "status": MessagePropertyValue.create_string(outcome.status),
                    "final": MessagePropertyValue.create_boolean(outcome.final),
                    "dead_letter": MessagePropertyValue.create_boolean(common.is_dead_letter(outcome)),
                }
                if outcome.project:
                    properties["project"] = MessagePropertyValue.create_string(outcome.project)
                if outcome.batch_id:
                    properties["batch_id"] = MessagePropertyValue.create_string(outcome.batch_id)
                message.set_user_properties(properties)

                def publish(timeout_s: float, message: Any = message) -> Any:
                    _set_timeout(account, timeout_s)
                    return topic.publish_message(message)

                common.with_retries(self.settings, self.ctx, publish, classify)
                published += 1
        except common.SinkDeliveryError as error:
            # Stop at the first message that could not be published (a missing topic or a denied key would
            # refuse the rest too); the log line of every outcome is already written.
            common.report_failure(self.name, error, invocation.request_id, published=published, total=len(chosen))
            raise
