"""Run one trigger event through `handler.handler`, locally: the counterpart of `s local invoke`, without Docker.

    python3 dev.py invoke examples/mns-queue-eventbridge.json
    python3 dev.py invoke examples/oss-put.json --upload-object examples/oss-update-object.json
    python3 dev.py invoke examples/timer.json --context-timeout 10
    python3 dev.py invoke examples/direct.json --fault 'UpdateBatch:unavailable:*'    # see the retry path

Target (devtools/target.py): with neither `IMM_REGION` nor `IMM_ENDPOINT` set, the emulator (IMM + OSS + MNS, demo
data) is started in-process and the function's environment points at it (IMM_ENDPOINT, IMM_PROTOCOL=http, IMM_REGION
and FC_REGION, OSS_ENDPOINT, and WORK_QUEUE_ENDPOINT / RESULT_MNS_ENDPOINT unless you set them: the WORK_QUEUE queue
and the RESULT_MNS_TOPIC topic are made in it, so fan-out and the result sink stay local too); as on FC's python3.10
runtime, the keys reach the function in the context object (`context.credentials`, an STS-style key triple the
emulator accepts). With either set, the function calls that IMM with the keys in `ALIBABA_CLOUD_ACCESS_KEY_ID` /
`_SECRET` [/ `_SECURITY_TOKEN`]; without them, or when the endpoint does not accept a connection, the command stops
with a message (exit code 2 or 1) and never uses the emulator.

`--upload-object FILE` first puts FILE where each ObjectCreated record of an OSS event points (the native
trigger's `events`, or the `data` of the EventBridge OSS trigger's CloudEvent) and sets the record's size and eTag
to match, as uploading it to the bucket would, or, for a timer payload or direct invocation
`{"Source": "oss://bucket/key"}`, at that config object. `--fault ACTION:KIND[:COUNT][:k=v,...]` (repeatable)
injects emulator faults, e.g. `GetObject:internal:*`; a value holding a comma goes base64-encoded, as
`body_b64=...` for the `answer` fault.

Output (stdout): the function's own JSON log lines, then `result:` and the handler's result, or the
`DeliveryIncomplete` message the platform would retry on (exit code 1), then the emulator's batches after the
run. An event file or --upload-object file that cannot be read, or a --fault spec the emulator does not take, is
one line on stderr and exit code 2. Development tool: never deployed with the function.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import uuid
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote_plus

from devtools.target import TargetError, choose, fc_function, local_region, point_function_at, unreachable

ROOT = Path(__file__).resolve().parent.parent
DEMO_PROJECT = "demo-project"
RESULT_MARKER = "result:"
STATE_MARKER = f"emulator batches ({DEMO_PROJECT}) after the run:"
MISSING_OBJECT = ("NoSuchKey", "NoSuchBucket")  # answered for an object not uploaded (to a bucket not in the seed)


class InvokeError(Exception):
    """A file the command needs cannot be read; the message says which and why."""


def read_file(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InvokeError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def start_emulator() -> tuple[Any, SimpleNamespace]:
    """A started emulator with the demo data, the function's environment pointed at it (IMM, OSS, and the MNS of
    WORK_QUEUE and RESULT_MNS_TOPIC unless their endpoints are set), and FC-style keys."""
    from emulator import Emulator

    emu = Emulator(seed="demo").start()
    keys = SimpleNamespace(
        access_key_id="STS.local-invoke",
        access_key_secret=secrets.token_urlsafe(24),
        security_token=secrets.token_urlsafe(48),
    )
    emu.keyring.add(keys.access_key_id, keys.access_key_secret, keys.security_token)
    point_function_at(emu)
    return emu, keys


def fc_context(timeout_s: float, credentials: SimpleNamespace | None, region: str) -> SimpleNamespace:
    """Shaped like FC's python3.10 context (FC's own class only exists inside the runtime)."""
    return SimpleNamespace(
        request_id=str(uuid.uuid4()),
        credentials=credentials,  # None: the function reads ALIBABA_CLOUD_* (as on python3.12)
        function=fc_function(timeout_s),
        service=SimpleNamespace(log_project="", log_store="", qualifier="LATEST", version_id=""),
        region=region,
        account_id="local",
    )


def oss_records(event: Any) -> list[dict[str, Any]]:
    """The ObjectCreated records of an OSS event: the native trigger's `events`, or the `data` of the EventBridge
    OSS trigger's CloudEvents (`source: acs.oss`, one or an array)."""
    records = event.get("events") if isinstance(event, dict) else None
    if records is None:
        items = event if isinstance(event, list) else [event]
        records = [i["data"] for i in items if isinstance(i, dict) and i.get("source") == "acs.oss" and "data" in i]
    created = [r for r in records or [] if isinstance(r, dict) and isinstance(r.get("eventName"), str)]
    return [r for r in created if r["eventName"].startswith("ObjectCreated:")]


def upload_for_oss_event(emu: Any, event: Any, data: bytes) -> None:
    """Put `data` where each ObjectCreated record points, and make the record's size and eTag match it."""
    for record in oss_records(event):
        obj = record["oss"]["object"]
        stored = emu.oss.put_object(record["oss"]["bucket"]["name"], unquote_plus(obj["key"]), data)
        obj["size"], obj["eTag"] = stored.size, stored.etag


def config_object_source(event: Any) -> str | None:
    """The `oss://bucket/key` a timer payload or a direct invocation names (`{"Source": ...}`), if any."""
    document = event
    if isinstance(event, dict) and "triggerTime" in event and isinstance(event.get("payload"), str):
        try:
            document = json.loads(event["payload"])
        except ValueError:
            return None
    source = document.get("Source") if isinstance(document, dict) else None
    return source if isinstance(source, str) and source.startswith("oss://") and "/" in source[6:] else None


def batch_states(emu: Any) -> dict[str, Any]:
    return {
        b["Id"]: {k: b[k] for k in ("State", "Input", "Actions", "Tags") if k in b}
        for b in emu.imm.list_batches(DEMO_PROJECT)
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 dev.py invoke", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("event", help="a JSON event file (see examples/)")
    parser.add_argument(
        "--upload-object",
        metavar="FILE",
        help='upload FILE first: for OSS events to the named key, for a {"Source": "oss://..."} timer payload or '
        "direct invocation to that config object",
    )
    parser.add_argument(
        "--context-timeout", "--timeout", type=float, default=30.0, metavar="S", help="context.function.timeout"
    )
    parser.add_argument("--fault", action="append", default=[], metavar="SPEC", help="inject an emulator fault")
    args = parser.parse_args(argv)

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    try:
        raw = read_file(args.event, "the event file")
        upload = read_file(args.upload_object, "the --upload-object file") if args.upload_object else None
    except InvokeError as exc:
        print(f"dev.py invoke: {exc}", file=sys.stderr)
        return 2
    try:
        target = choose()
    except TargetError as exc:
        print(f"dev.py invoke: {exc}", file=sys.stderr)
        return 2
    if target.real:
        if args.upload_object or args.fault:
            parser.error("--upload-object and --fault need the emulator: unset IMM_ENDPOINT and IMM_REGION")
        problem = unreachable(target)
        if problem:
            print(f"dev.py invoke: {problem}", file=sys.stderr)
            return 1
        print(f"IMM: {target.address} ({target.chosen_by}), keys from ALIBABA_CLOUD_ACCESS_KEY_ID", file=sys.stderr)
    elif os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID"):
        print(
            "note: ALIBABA_CLOUD_ACCESS_KEY_ID is set but neither IMM_REGION nor IMM_ENDPOINT: using the bundled "
            "emulator (set IMM_REGION for real IMM)",
            file=sys.stderr,
        )
    emu, keys = (None, None) if target.real else start_emulator()
    try:
        if emu is not None:
            for spec in args.fault:
                try:
                    emu.faults.add_spec(spec)
                except ValueError as exc:
                    reason = str(exc) if spec in str(exc) else f"{spec!r}: {exc}"
                    print(f"dev.py invoke: bad --fault {reason}", file=sys.stderr)
                    return 2
        if emu is not None and upload is not None:
            try:
                event = json.loads(raw)
            except ValueError as exc:
                print(f"dev.py invoke: {args.event} is not JSON ({exc}); --upload-object needs it", file=sys.stderr)
                return 2
            source = config_object_source(event)
            if source is not None:  # a config object: put the file where Source points
                bucket, key = source[len("oss://") :].split("/", 1)
                emu.oss.create_bucket(bucket)
                emu.oss.put_object(bucket, key, upload)
            elif oss_records(event):
                upload_for_oss_event(emu, event, upload)
                raw = json.dumps(event).encode()
            else:
                parser.error("--upload-object needs an OSS event with an ObjectCreated record, or a Source payload")
        import handler
        from imm_batch_updater.app import DeliveryIncomplete

        region = local_region()  # the function's own region (FC_REGION, else IMM_REGION): devtools/target.py
        code = 0
        try:
            result: Any = handler.handler(raw, fc_context(args.context_timeout, keys, region))
        except DeliveryIncomplete as exc:
            result, code = {"raised": "DeliveryIncomplete", "message": str(exc)}, 1
        print(RESULT_MARKER)
        print(json.dumps(result, indent=2, ensure_ascii=False))
        if emu is not None:
            results = result.get("results", []) if isinstance(result, dict) else []
            missing = [r for r in results if (r.get("error") or {}).get("code") in MISSING_OBJECT]
            if missing and not args.upload_object:
                print(
                    "hint: the object is not in the emulator; add --upload-object FILE, the update document to put "
                    "there (examples/README.md names one for each example, e.g. examples/oss-update-object.json)",
                    file=sys.stderr,
                )
            queued = {r.get("queue") for r in results if r.get("status") == "queued"}
            for queue in sorted(q for q in queued if isinstance(q, str)):
                print(
                    f"note: queued on {queue} in this run's emulator, which stops now: `WORK_QUEUE={queue} "
                    "python3 dev.py serve` applies fanned-out work (its pump delivers the queue back)",
                    file=sys.stderr,
                )
            topic = os.environ.get("RESULT_MNS_TOPIC", "").strip()
            if topic and topic in emu.mns.topics():
                published = emu.mns.published(topic)
                tags = Counter(str(m.get("tag")) for m in published)
                counted = ", ".join(f"{tag} x{n}" for tag, n in tags.items())
                print(
                    f"note: the result sink published {len(published)} message(s) to topic {topic} in this run's "
                    f"emulator" + (f" (tags: {counted})" if counted else ""),
                    file=sys.stderr,
                )
            print(STATE_MARKER)
            for batch_id, state in batch_states(emu).items():
                print(f"  {batch_id}: {json.dumps(state, ensure_ascii=False, separators=(',', ':'))}")
        return code
    finally:
        if emu is not None:
            emu.stop()


if __name__ == "__main__":
    raise SystemExit(main())
