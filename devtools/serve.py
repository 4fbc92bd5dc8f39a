"""Run the function locally behind a real HTTP port, the way FC's HTTP trigger runs it.

    python -m devtools.serve [--port 9000] [--emulator-port 9100] [--timeout 30]

Each HTTP request becomes an FC 3.0 HTTP trigger event (`{"version": "v1", "rawPath", "body", "isBase64Encoded",
"headers", "queryParameters", "requestContext": {...}}`) for `handler.handler`, and the response struct it returns
becomes the HTTP response, so `curl` works exactly as against the deployed trigger.

Target:
- by default the bundled emulator (IMM + OSS + MNS, demo data, key local-ak/local-secret) is started in-process;
- with `IMM_ENDPOINT` and credentials (`ALIBABA_CLOUD_ACCESS_KEY_ID` / `_SECRET` [/ `_SECURITY_TOKEN`]) set in
  the environment, the function talks to that IMM instead and no emulator is started.

Without `WEBHOOK_SECRET` a random secret is made for the session and printed with a signed example request.
Development tool: never deployed with the function.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import signal
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = {"ProjectName": "demo-project", "Id": "batch-demo-ready", "Tags": {"owner": "media-team"}}


def to_fc_event(method: str, target: str, headers: dict[str, str], body: bytes, client_ip: str) -> dict[str, Any]:
    split = urlsplit(target)
    try:
        text, is_b64 = body.decode("utf-8"), False
    except UnicodeDecodeError:  # FC base64-encodes bodies it cannot pass as text
        text, is_b64 = base64.b64encode(body).decode(), True
    query: dict[str, str] = {}
    for k, v in parse_qsl(split.query, keep_blank_values=True):
        query[k] = f"{query[k]},{v}" if k in query else v  # FC joins repeated values with commas
    now = time.time()
    return {
        "version": "v1",
        "rawPath": split.path or "/",
        "body": text,
        "isBase64Encoded": is_b64,
        "headers": headers,
        "queryParameters": query,
        "requestContext": {
            "accountId": "local",
            "domainName": "127.0.0.1",
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": unquote(split.path or "/"),
                "protocol": "HTTP/1.1",
                "sourceIp": client_ip,
                "userAgent": headers.get("User-Agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
            "timeEpoch": str(int(now * 1000)),
        },
    }


def local_context(timeout_s: float) -> SimpleNamespace:
    """Shaped like FC's context. Credentials come from the environment on every call (as on python3.12)."""
    return SimpleNamespace(
        request_id=str(uuid.uuid4()),
        credentials=None,
        function=SimpleNamespace(
            name="imm-batch-updater-local", handler="handler.handler", memory=256, timeout=timeout_s
        ),
        region=os.environ.get("IMM_REGION") or os.environ.get("FC_REGION") or "cn-hangzhou",
        account_id="local",
    )


def make_http_handler(invoke: Any, timeout_s: float) -> type[BaseHTTPRequestHandler]:
    class FcHttpTrigger(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "fc-local"

        def log_message(self, format: str, *args: Any) -> None:
            sys.stderr.write(f"{self.command} {self.path} -> {args[1] if len(args) > 1 else ''}\n")

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            event = to_fc_event(self.command, self.path, dict(self.headers.items()), body, self.client_address[0])
            try:
                response = invoke(json.dumps(event).encode(), local_context(timeout_s))
            except Exception as exc:  # what FC would answer for an unhandled error
                response = {
                    "statusCode": 502,
                    "headers": {"Content-Type": "application/json", "X-Fc-Error-Type": "UnhandledInvocationError"},
                    "body": json.dumps({"errorMessage": str(exc), "errorType": type(exc).__name__}),
                }
            raw = response.get("body") or ""
            data = base64.b64decode(raw) if response.get("isBase64Encoded") else str(raw).encode()
            self.send_response(int(response.get("statusCode", 200)))
            for name, value in (response.get("headers") or {}).items():
                self.send_header(name, str(value))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

    return FcHttpTrigger


def configure_target(emulator_port: int) -> Any:
    """Point the function at real IMM (when configured) or at a freshly started emulator. Returns the emulator."""
    if os.environ.get("IMM_ENDPOINT") and os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID"):
        return None
    from emulator import Emulator

    emu = Emulator(seed="demo", port=emulator_port).start()
    os.environ.update(
        {
            "IMM_ENDPOINT": emu.endpoint,
            "IMM_PROTOCOL": "http",
            "IMM_REGION": emu.region,
            "OSS_ENDPOINT": emu.url,
            "ALIBABA_CLOUD_ACCESS_KEY_ID": emu.access_key_id,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": emu.access_key_secret,
        }
    )
    os.environ.pop("ALIBABA_CLOUD_SECURITY_TOKEN", None)
    return emu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "9000")))
    parser.add_argument("--emulator-port", type=int, default=9100)
    parser.add_argument("--timeout", type=float, default=30.0, help="the function timeout in seconds")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    emu = configure_target(args.emulator_port)
    generated_secret = os.environ.get("HTTP_AUTH", "webhook") == "webhook" and not os.environ.get("WEBHOOK_SECRET")
    if generated_secret:
        os.environ["WEBHOOK_SECRET"] = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    import handler

    server = ThreadingHTTPServer((args.host, args.port), make_http_handler(handler.handler, args.timeout))
    url = f"http://{args.host}:{server.server_address[1]}/"
    from devtools.sign import curl_command

    target = f"emulator at {emu.url} (demo-project; key {emu.access_key_id})" if emu else os.environ["IMM_ENDPOINT"]
    print(f"imm-batch-updater listening on {url}  ->  IMM: {target}", flush=True)
    if os.environ.get("HTTP_AUTH", "webhook") == "webhook":
        if generated_secret:  # a throwaway secret made for this session; a secret you set is never printed
            print(f"WEBHOOK_SECRET={os.environ['WEBHOOK_SECRET']}  (generated for this session)", flush=True)
        print("\nA signed request (valid 5 minutes; `python -m devtools.sign FILE` makes more):\n", flush=True)
        print(curl_command(url, os.environ["WEBHOOK_SECRET"].split()[0], json.dumps(EXAMPLE).encode()), flush=True)
    print(f"\nAlso: curl {url}healthz   curl {url}schema\nCtrl-C stops.\n", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        while not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    server.shutdown()
    server.server_close()
    if emu is not None:
        emu.stop()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
