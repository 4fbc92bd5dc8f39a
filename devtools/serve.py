"""Run the function locally behind a real HTTP port, the way FC's HTTP trigger runs it.

    python3 dev.py serve [--port 9000] [--emulator-port 9100] [--host 127.0.0.1] [--timeout 30]

Each HTTP request becomes an FC 3.0 HTTP trigger event (`{"version": "v1", "rawPath", "body", "isBase64Encoded",
"headers", "queryParameters", "requestContext": {...}}`) for `handler.handler`, and the response struct it returns
becomes the HTTP response, so `curl` works exactly as against the deployed trigger.

Target (devtools/target.py):
- by default the bundled emulator (IMM + OSS + MNS, demo data, key local-ak/local-secret) is started in-process
  on --emulator-port; WORK_QUEUE_ENDPOINT and RESULT_MNS_ENDPOINT default to it, with WORK_QUEUE set that queue is
  made in the emulator and a pump delivers what lands on it back to the function, as its EventBridge trigger would,
  and a RESULT_MNS_TOPIC topic is made there too;
- with `IMM_REGION` or `IMM_ENDPOINT` set, the function talks to that IMM with the keys in
  `ALIBABA_CLOUD_ACCESS_KEY_ID` / `_SECRET` [/ `_SECURITY_TOKEN`] and no emulator is started. Without keys, or when
  the endpoint does not accept a connection, the server does not start (it never falls back to the emulator).

Without `WEBHOOK_SECRET` a random secret is made for the session and printed with a signed example request and the
commands that sign more. The example names the demo batch (demo-project/batch-demo-ready): on any other IMM the
banner says so under it. A `WEBHOOK_SECRET` the function would leave out (not `whsec_` and base64 of at least 24
bytes) stops the server at once with one line saying so (exit code 2); the secret itself is never printed. A port
already in use is reported in one line naming it and the option that picks another.
Development tool: never deployed with the function.
"""

from __future__ import annotations

import argparse
import base64
import errno
import json
import os
import secrets
import signal
import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from devtools.target import (
    Target,
    TargetError,
    choose,
    fc_function,
    is_emulator,
    is_local,
    local_region,
    point_function_at,
    unreachable,
)

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
        function=fc_function(timeout_s),
        region=local_region(),  # the function's own region (FC_REGION, else IMM_REGION): devtools/target.py
        account_id="local",
    )


def make_http_handler(invoke: Any, timeout_s: float) -> type[BaseHTTPRequestHandler]:
    class FcHttpTrigger(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "fc-local"

        def log_message(self, format: str, *args: Any) -> None:
            # A request refused before it was parsed (a request line too long) has no command or path yet.
            command, path = getattr(self, "command", None) or "-", getattr(self, "path", None) or "-"
            sys.stderr.write(f"{command} {path[:200]} -> {args[1] if len(args) > 1 else ''}\n")

        def _serve(self) -> None:
            body = self._body()
            if body is None:
                return
            event = to_fc_event(self.command, self.path, fc_headers(self.headers.items()), body, self.client_address[0])
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

        def _body(self) -> bytes | None:
            """The request body (Content-Length or chunked), or None after answering 400 for a malformed one."""
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                chunks: list[bytes] = []
                while True:
                    size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
                    try:
                        size = int(size_line, 16)
                    except ValueError:
                        self.send_error(400, "malformed chunked body")
                        return None
                    if size == 0:
                        self.rfile.readline(1024)
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline(1024)
            raw = self.headers.get("Content-Length") or "0"
            if not raw.isdigit():
                self.send_error(400, "Content-Length is not a number")
                return None
            length = int(raw)
            return self.rfile.read(length) if length else b""

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

    return FcHttpTrigger


def fc_headers(items: Any) -> dict[str, str]:
    """Request headers as FC 3.0 puts them in the event: one entry per name, repeated values joined with ", "."""
    headers: dict[str, str] = {}
    for name, value in items:
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def start_emulator(port: int) -> Any:
    """Start the emulator with the demo data and point the function's environment at it."""
    from emulator import Emulator

    emu = Emulator(seed="demo", port=port).start()
    os.environ.update(
        {"ALIBABA_CLOUD_ACCESS_KEY_ID": emu.access_key_id, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": emu.access_key_secret}
    )
    os.environ.pop("ALIBABA_CLOUD_SECURITY_TOKEN", None)
    # Fan-out and the result topic stay local too: their endpoints default to the emulator, where WORK_QUEUE's queue
    # (a pump delivers it back) and RESULT_MNS_TOPIC's topic are made.
    point_function_at(emu)
    return emu


def webhook_auth() -> bool:
    """Whether the function authenticates POSTs with WEBHOOK_SECRET (HTTP_AUTH as the function parses it)."""
    from imm_batch_updater.config import env_choice

    return env_choice(os.environ.get("HTTP_AUTH"), "HTTP_AUTH", ("webhook", "none"), "webhook", []) == "webhook"


def secret_problem(raw: str) -> str | None:
    """Why the function would leave out a secret in WEBHOOK_SECRET `raw` (its own rule, never quoting the secret),
    or None when it keeps every one."""
    from imm_batch_updater.config import webhook_secrets

    warnings: list[str] = []
    webhook_secrets(raw, warnings)
    return warnings[0] if warnings else None


def start_pump(queue: str, endpoint: str, stop: threading.Event) -> threading.Thread:
    """The local twin of the work queue's EventBridge trigger (devtools.pump), in the background until `stop`."""
    import handler
    from devtools.pump import Key, Pump

    key = Key(os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"], os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"])
    pump = Pump(endpoint, queue, key, handler.handler)

    def run() -> None:
        while not stop.is_set():
            try:
                pump.round(wait_s=1)
            except Exception as exc:  # keep serving; say what happened
                print(f"pump: {type(exc).__name__}: {exc}", file=sys.stderr)
                stop.wait(1.0)

    thread = threading.Thread(target=run, name="work-queue-pump", daemon=True)
    thread.start()
    return thread


def work_queue_note(queue: str, endpoint: str) -> str:
    """The banner's line for a WORK_QUEUE this server does not deliver back (not in an emulator it started)."""
    where = f"at WORK_QUEUE_ENDPOINT={endpoint}" if endpoint else "at the account's MNS endpoint"
    if endpoint and is_local(endpoint):
        return (
            f"work queue {queue}: {where}; nothing here delivers it back: run `python3 dev.py pump` in another "
            "shell with the same environment (its `queued` work is applied by the pump)"
        )
    return (
        f"work queue {queue}: {where}; nothing here delivers it back: the queue's own trigger does (in FC, the "
        "function's EventBridge trigger on it)"
    )


def port_problem(exc: OSError, what: str, host: str, port: int, option: str) -> str:
    """One line for a port the server cannot listen on (`what`: "the function", "the emulator")."""
    if exc.errno == errno.EADDRINUSE:
        return (
            f"dev.py serve: port {port} on {host} ({what}) is already in use, by another `python3 dev.py serve`? "
            f"Choose another with {option}, e.g. `python3 dev.py serve {option} {free_port_after(host, port)}`."
        )
    reason = exc.strerror or str(exc)
    return f"dev.py serve: cannot listen on {host}:{port} ({what}): {reason}. Choose another with {option}."


def free_port_after(host: str, port: int) -> int:
    """The first port above `port` that can be listened on now (a suggestion; 0 lets the system pick one)."""
    for candidate in range(port + 1, min(port + 50, 65536)):
        try:
            with socket.create_server((host, candidate)):
                return candidate
        except OSError:
            continue
    return 0


def demo_batch_note(target: Target) -> str:
    """The banner's line under the sample when the IMM is not the bundled emulator: the sample is not about that IMM."""
    project, batch = EXAMPLE["ProjectName"], EXAMPLE["Id"]
    return (
        f"Note: this sample (like examples/direct.json) names the demo batch {project}/{batch} of the bundled "
        f"emulator's demo data: the IMM chosen by {target.chosen_by} answers 404 not_found unless it has that batch "
        "too; sign a document naming one of its batches (python3 dev.py sign FILE)."
    )


def banner(url: str, emu: Any, target: Target, generated_secret: bool) -> str:
    imm = (
        f"emulator at {emu.url} (demo-project; key {emu.access_key_id})"
        if emu
        else f"{target.address} ({target.chosen_by})"
    )
    lines = [f"imm-batch-updater listening on {url}  ->  IMM: {imm}"]
    if webhook_auth():
        from devtools.sign import DEFAULT_URL, curl_command

        secret = os.environ["WEBHOOK_SECRET"].split()[0]
        url_option = "" if url == DEFAULT_URL else f" --url {url}"
        if generated_secret:  # a throwaway secret made for this session; a secret you set is never printed
            lines += [f"WEBHOOK_SECRET={secret}  (generated for this session)"]
        lines += [
            "",
            "A signed request (valid 5 minutes):",
            "",
            curl_command(url, secret, json.dumps(EXAMPLE).encode()),
        ]
        if not emu:  # the demo batch is in the bundled emulator's demo data only
            lines += [demo_batch_note(target)]
        lines += [
            "",
            "More signed requests, from another shell in this folder:",
        ]
        if generated_secret:
            lines += [f"  export WEBHOOK_SECRET='{secret}'"]
        lines += [
            f"  python3 dev.py sign --send{url_option} examples/direct.json   # sends it and prints the answer",
            f"  python3 dev.py sign{url_option} examples/direct.json          # prints the curl command instead",
        ]
    lines += ["", f"Also: curl {url}healthz   curl {url}schema", "Ctrl-C stops.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 dev.py serve", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("PORT", "9000")), help="the function's port (default 9000)"
    )
    parser.add_argument("--emulator-port", type=int, default=9100, help="the emulator's port (default 9100)")
    parser.add_argument("--timeout", type=float, default=30.0, help="the function timeout in seconds")
    args = parser.parse_args(argv)

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    try:
        target = choose()
    except TargetError as exc:
        print(f"dev.py serve: {exc}", file=sys.stderr)
        return 2
    if target.real:
        problem = unreachable(target)
        if problem:
            print(f"dev.py serve: {problem}", file=sys.stderr)
            return 1
    generated_secret = webhook_auth() and not os.environ.get("WEBHOOK_SECRET", "").strip()
    problem = None if generated_secret or not webhook_auth() else secret_problem(os.environ["WEBHOOK_SECRET"])
    if problem:  # the function would refuse every POST: say so now, not on the first request
        print(
            f"dev.py serve: {problem}, so requests signed with it would be answered 401. Fix it, or unset "
            "WEBHOOK_SECRET for a secret made for this session.",
            file=sys.stderr,
        )
        return 2

    function: dict[str, Any] = {}

    def invoke(event: bytes, context: Any) -> Any:
        return function["handler"](event, context)

    try:
        server = ThreadingHTTPServer((args.host, args.port), make_http_handler(invoke, args.timeout))
    except OSError as exc:
        print(port_problem(exc, "the function", args.host, args.port, "--port"), file=sys.stderr)
        return 1
    emu = None
    if not target.real:
        try:
            emu = start_emulator(args.emulator_port)
        except OSError as exc:
            server.server_close()
            print(
                port_problem(exc, "the emulator", "127.0.0.1", args.emulator_port, "--emulator-port"), file=sys.stderr
            )
            return 1
    if generated_secret:
        os.environ["WEBHOOK_SECRET"] = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    import handler

    function["handler"] = handler.handler
    url = f"http://{args.host}:{server.server_address[1]}/"
    print(banner(url, emu, target, generated_secret), flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    queue = os.environ.get("WORK_QUEUE", "").strip()
    if emu is not None and queue and is_emulator(os.environ["WORK_QUEUE_ENDPOINT"], emu.url):
        start_pump(queue, os.environ["WORK_QUEUE_ENDPOINT"], stop)
        print(f"work queue {queue}: in the emulator, delivered back to the function", flush=True)
    elif queue:
        print(work_queue_note(queue, os.environ.get("WORK_QUEUE_ENDPOINT", "")), flush=True)
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
