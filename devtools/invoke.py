"""Run one trigger event through `handler.handler`, locally: the counterpart of `s local invoke`, without Docker.

    python -m devtools.invoke examples/mns-queue-eventbridge.json
    python -m devtools.invoke examples/oss-put.json --upload-object examples/oss-update-object.json
    python -m devtools.invoke examples/timer.json --timeout 10

Unless `IMM_ENDPOINT` and `ALIBABA_CLOUD_ACCESS_KEY_ID` are set (then the real services are used), the emulator
is started in-process with its demo data and the function is pointed at it. `--upload-object` first puts a local
file at the bucket/key each OSS event record names. Prints the handler's result (exit 0) or the
`DeliveryIncomplete` message that would make the platform retry (exit 1), then the demo batches' state.
Development tool: never deployed with the function.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

ROOT = Path(__file__).resolve().parent.parent


def upload_for_oss_event(emu: Any, event: Any, data: bytes) -> Any:
    """Put `data` where each ObjectCreated record points, and fix the record's size to match."""
    for record in event.get("events", []) if isinstance(event, dict) else []:
        obj = record["oss"]["object"]
        stored = emu.oss.put_object(record["oss"]["bucket"]["name"], unquote_plus(obj["key"]), data)
        obj["size"], obj["eTag"] = len(data), stored.etag
    return event


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("event", help="a JSON event file (see examples/)")
    parser.add_argument("--upload-object", metavar="FILE", help="for OSS events: upload FILE to the named key first")
    parser.add_argument("--timeout", type=float, default=30.0, help="the function timeout in seconds")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    from devtools.serve import configure_target, local_context

    raw = Path(args.event).read_bytes()
    emu = configure_target(emulator_port=0)
    try:
        if args.upload_object:
            if emu is None:
                print("--upload-object needs the emulator (unset IMM_ENDPOINT)", file=sys.stderr)
                return 2
            event = upload_for_oss_event(emu, json.loads(raw), Path(args.upload_object).read_bytes())
            raw = json.dumps(event).encode()
        import handler
        from imm_batch_updater.app import DeliveryIncomplete

        context = local_context(args.timeout)
        context.request_id = str(uuid.uuid4())
        try:
            result = handler.handler(raw, context)
            code = 0
        except DeliveryIncomplete as exc:
            result, code = {"raised": "DeliveryIncomplete", "message": str(exc)}, 1
        print(json.dumps(result, indent=2, ensure_ascii=False))
        if emu is not None:
            states = {b["Id"]: {k: b.get(k) for k in ("State", "Tags")} for b in emu.imm.list_batches("demo-project")}
            print("emulator batches:", json.dumps(states, ensure_ascii=False), file=sys.stderr)
        return code
    finally:
        if emu is not None:
            emu.stop()


if __name__ == "__main__":
    raise SystemExit(main())
