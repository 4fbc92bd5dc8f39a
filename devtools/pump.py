"""The local twin of the work queue's trigger: deliver what lands on an MNS queue to the function, the way the
EventBridge MNS trigger with batch push does (`python3 dev.py pump`; `python3 dev.py serve` runs one itself when
WORK_QUEUE is set and it started the emulator). Development tool: never deployed.

    python3 dev.py pump --queue imm-batch-updater-work [--mns http://127.0.0.1:9100] [--once]

Each round receives up to 16 messages with the MNS SDK (`batch_receive_message`, long polling), turns them into a
JSON array of `mns:Queue:SendMessage` CloudEvents (`data.messageBody` as the queue holds it: base64 unless the
trigger decodes it, like EventBridge's default), calls `handler.handler` with it and an FC-shaped context, and
deletes the messages when the handler returns. When the handler raises (some item not final), the messages stay
and come back after the queue's visibility timeout, as EventBridge's retry would deliver them again.

IMM: a queue on a local MNS (a loopback --mns, such as `python3 dev.py emulator`) is applied to that emulator's
IMM too (IMM_ENDPOINT, IMM_PROTOCOL=http and, unless set, OSS_ENDPOINT, WORK_QUEUE_ENDPOINT and RESULT_MNS_ENDPOINT
point at it), unless you set IMM_ENDPOINT: local queue documents never reach a real account by accident. The keys
are ALIBABA_CLOUD_ACCESS_KEY_ID / _SECRET [/ _SECURITY_TOKEN], default the emulator's local-ak / local-secret.

Exit code 1: with --once, when a delivery was not final (the handler raised: some item throttled or failed); and
when the queue cannot be read (missing, or MNS not answering), said in one line naming the endpoint and queue.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from devtools.target import fc_function, local_region

ROOT = Path(__file__).resolve().parent.parent
BATCH = 16  # MNS BatchReceiveMessage's most


@dataclass
class Key:
    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)


def cloud_event(queue: str, message: Any, region: str = "cn-hangzhou", account: str = "1234567890") -> dict[str, Any]:
    """One message as EventBridge's MNS source delivers it (see examples/mns-queue-eventbridge.json)."""
    return {
        "id": str(uuid.uuid4()),
        "source": "MNS-imm-batch-updater-work",
        "specversion": "1.0",
        "type": "mns:Queue:SendMessage",
        "datacontenttype": "application/json;charset=utf-8",
        "subject": f"acs:mns:{region}:{account}:queues/{queue}",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "aliyunaccountid": account,
        "data": {
            "requestId": str(uuid.uuid4()),
            "messageId": message.message_id,
            "messageBody": message.message_body,
        },
    }


def fc_context(key: Key, timeout: float = 60) -> SimpleNamespace:
    return SimpleNamespace(
        request_id=str(uuid.uuid4()),
        credentials=SimpleNamespace(
            access_key_id=key.access_key_id,
            access_key_secret=key.access_key_secret,
            security_token=key.security_token,
        ),
        function=fc_function(timeout),
        region=local_region(),  # the function's own region (FC_REGION, else IMM_REGION): devtools/target.py
        account_id="1234567890",
    )


class Pump:
    """Receives from `queue` at `endpoint` with `key` and hands each batch to `handler` (handler.handler)."""

    def __init__(
        self, endpoint: str, queue: str, key: Key, handler: Callable[[bytes, Any], Any], timeout_s: float = 60
    ) -> None:
        from mns.account import Account

        account = Account(endpoint, key.access_key_id, key.access_key_secret, key.security_token or "")
        self.queue = account.get_queue(queue)
        self.queue.set_encoding(False)  # hand the body on as the queue holds it, as EventBridge does by default
        self.name = queue
        self.key = key
        self.handler = handler
        self.timeout_s = timeout_s
        self.delivered = 0  # messages handed to the function and deleted
        self.failed_deliveries = 0  # deliveries the function raised for (left on the queue)

    def round(self, wait_s: int = 1) -> int:
        """One receive, one delivery. Returns how many messages it delivered (0: the queue was empty)."""
        from mns.mns_exception import MNSServerException

        try:
            messages = self.queue.batch_receive_message(BATCH, wait_s)
        except MNSServerException as exc:
            if getattr(exc, "type", "") == "MessageNotExist":
                return 0
            raise
        event = json.dumps([cloud_event(self.name, m) for m in messages]).encode()
        try:
            self.handler(event, fc_context(self.key, self.timeout_s))
        except Exception as exc:  # DeliveryIncomplete: EventBridge would deliver again after the visibility timeout
            self.failed_deliveries += 1
            print(f"pump: delivery not final ({type(exc).__name__}); left on the queue", file=sys.stderr)
            return len(messages)
        self.queue.batch_delete_message([m.receipt_handle for m in messages])
        self.delivered += len(messages)
        return len(messages)

    def drain(self, idle_rounds: int = 1, wait_s: int = 1) -> int:
        """Deliver until the queue stays empty for `idle_rounds` receives; the number of messages delivered."""
        before = self.delivered
        idle = 0
        while idle < idle_rounds:
            idle = 0 if self.round(wait_s) else idle + 1
        return self.delivered - before


class PumpError(Exception):
    """The queue cannot be read (missing, refused, unreachable); the message is one line naming endpoint and queue."""


def receive_problem(exc: Exception, endpoint: str, queue: str) -> str | None:
    """One line for an MNS error receiving from `queue` at `endpoint`, None for an exception that is not MNS's."""
    from mns.mns_exception import MNSClientNetworkException, MNSServerException

    if isinstance(exc, MNSServerException) and exc.type == "QueueNotExist":
        return (
            f"queue {queue} does not exist at {endpoint}: create it there, or name another with --queue "
            "(`WORK_QUEUE=NAME python3 dev.py serve` makes its work queue in the emulator it starts)"
        )
    if isinstance(exc, MNSServerException):
        return f"MNS at {endpoint} refused to receive from queue {queue}: {exc.type}: {exc.message}"
    if isinstance(exc, MNSClientNetworkException):
        return (
            f"no answer from MNS at {endpoint} (queue {queue}): {exc.message}. Is the emulator running "
            "(`python3 dev.py emulator`)? --mns names another endpoint"
        )
    return None


def imm_description(override: str | None) -> str:
    """Which IMM the handler will call, for the pump's first line."""
    if override:
        return f"the emulator at {override} (the queue is local and IMM_ENDPOINT is not set)"
    if os.environ.get("IMM_ENDPOINT", "").strip():
        return f"IMM_ENDPOINT={os.environ['IMM_ENDPOINT'].strip()}"
    # The function's own rule and host, for the region this tool's context gives it (local_region()).
    from imm_batch_updater.config import Settings
    from imm_batch_updater.context import EndpointUnknown, endpoint

    settings = Settings.from_env()
    region = settings.imm_region_for(settings.function_region(local_region()))
    try:
        host = endpoint("imm", None, variable="IMM_ENDPOINT", region=region, network=settings.imm_network).host
    except EndpointUnknown as exc:
        return f"no IMM endpoint ({exc})"
    return f"{host} (no IMM_ENDPOINT)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 dev.py pump", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queue", default=os.environ.get("WORK_QUEUE"), help="the MNS queue (default: WORK_QUEUE)")
    parser.add_argument(
        "--mns",
        default=os.environ.get("WORK_QUEUE_ENDPOINT") or "http://127.0.0.1:9100",
        help="the MNS endpoint (default: WORK_QUEUE_ENDPOINT, else the local emulator)",
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="deliver until the queue is empty, then stop (exit code 1 when a delivery was not final)",
    )
    args = parser.parse_args(argv)
    if not args.queue:
        parser.error("name the queue: --queue NAME (or set WORK_QUEUE)")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from devtools.target import imm_for_local_queue

    override = imm_for_local_queue(args.mns)  # before the handler reads its settings
    import handler

    key = Key(
        os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID", "local-ak"),
        os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "local-secret"),
        os.environ.get("ALIBABA_CLOUD_SECURITY_TOKEN") or None,
    )
    pump = Pump(args.mns, args.queue, key, handler.handler)
    print(
        f"pump: delivering {args.queue} at {args.mns} to handler.handler; IMM: {imm_description(override)}"
        f"{'' if args.once else ' (Ctrl-C stops)'}",
        file=sys.stderr,
    )
    try:
        if args.once:
            pump.drain()
        else:
            while True:
                pump.round(wait_s=5)
    except KeyboardInterrupt:
        pass
    except Exception as exc:
        problem = receive_problem(exc, args.mns, args.queue)
        if problem is None:
            raise
        print(f"dev.py pump: {problem}", file=sys.stderr)
        return 1
    summary = f"pump: {pump.delivered} message(s) delivered"
    if pump.failed_deliveries:
        print(
            f"{summary}; {pump.failed_deliveries} delivery(ies) not final (some item throttled or failed: see the "
            "log lines above), left on the queue to come back after its visibility timeout",
            file=sys.stderr,
        )
        return 1
    print(summary, file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
