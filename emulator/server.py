"""HTTP front of the emulator: one port serves IMM, OSS and MNS, told apart by their headers.

- IMM (POP RPC): an `x-acs-action` header, or an `Action` query parameter (legacy V2 signing).
- MNS (XML API): an `x-mns-version` header.
- OSS (path-style, as oss2 sends it to an IP endpoint): everything else.

Every request is recorded in `Emulator.requests` (method, path, action, status; never secrets) so tests can
inspect what the SDKs sent. The log is a `collections.deque` bounded by `request_log_size` (default 100,000
records, far above what one test makes: the bench's 1,000 updates make ~2,000), so a long-running
`python -m emulator` does not grow without end; the oldest records go first. Faults (see `emulator.faults`) are
applied per service action before the service handles the request.

Every connection is served on a thread of its own (`ThreadingHTTPServer`), so a fault that holds one connection
(`latency`, `trickle`) never delays the others.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit


@dataclass
class Request:
    method: str
    path: str  # the raw (still percent-encoded) path, without the query string
    query: str  # the raw query string
    headers: dict[str, str]  # names lower-cased
    body: bytes
    client: str = ""

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    @property
    def query_params(self) -> dict[str, str]:
        return dict(parse_qsl(self.query, keep_blank_values=True))


@dataclass(frozen=True)
class Trickle:
    """How to send an answer slowly (the `trickle` fault): `chunk` bytes every `interval` seconds.

    The status line and headers go out at once unless `headers` is true, then the body trickles; the
    Content-Length announced is the full body's, so the client keeps reading until the last byte.
    """

    interval: float = 0.15
    headers: bool = False
    chunk: int = 1


@dataclass
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    drop: bool = False  # close the connection without answering (fault injection)
    trickle: Trickle | None = None  # send slowly (fault injection)
    serve: bool = False  # a fault's marker: let the service answer, then deliver that answer as this one says


@dataclass
class RequestRecord:
    service: str
    action: str
    method: str
    path: str
    status: int
    access_key_id: str | None
    at: float  # time.time() when the answer was ready
    started: float = 0.0  # time.time() when the request had been read (concurrency checks compare these)
    signing: str = ""  # the signature scheme the request used (see `_signing_of`), "" when unsigned
    body: bytes = b""  # the request body as received (form fields for IMM; no credentials are in a body)
    query: str = ""  # the raw query string, with signatures and security tokens masked (`_loggable_query`)


class Service(Protocol):
    """One emulated cloud service behind the shared port."""

    name: str

    def matches(self, request: Request) -> bool: ...

    def action_of(self, request: Request) -> str:
        """The action name used for fault injection and the request log (e.g. "UpdateBatch", "GetObject")."""
        ...

    def error_response(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
        """An error in this service's own wire format (JSON for IMM, XML for OSS and MNS)."""
        ...

    def handle(self, request: Request) -> Response: ...


class Keyring:
    """Access keys the emulator accepts: permanent keys and STS keys (which need their security token).

    STS keys can be expired on demand (`expire`) or on a deadline (`expires_at`), so tests can make the gateway
    answer `InvalidSecurityToken.Expired` the way it does when a role session runs out.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, tuple[str, str | None]] = {}
        self._expires_at: dict[str, float] = {}

    def add(
        self,
        access_key_id: str,
        access_key_secret: str,
        security_token: str | None = None,
        *,
        expires_at: float | None = None,
    ) -> None:
        """Accept a key; with `security_token` it is an STS key. `expires_at` is a time.time() deadline."""
        with self._lock:
            self._keys[access_key_id] = (access_key_secret, security_token)
            if expires_at is None:
                self._expires_at.pop(access_key_id, None)
            else:
                self._expires_at[access_key_id] = expires_at

    def remove(self, access_key_id: str) -> None:
        with self._lock:
            self._keys.pop(access_key_id, None)
            self._expires_at.pop(access_key_id, None)

    def lookup(self, access_key_id: str) -> tuple[str, str | None] | None:
        """(secret, security token or None) for a known key, else None."""
        with self._lock:
            return self._keys.get(access_key_id)

    def expire(self, access_key_id: str) -> None:
        """From now on requests with this STS key are refused as expired (IMM: InvalidSecurityToken.Expired;
        OSS and MNS: SecurityTokenExpired)."""
        with self._lock:
            self._expires_at[access_key_id] = float("-inf")

    def is_expired(self, access_key_id: str, now: float | None = None) -> bool:
        with self._lock:
            deadline = self._expires_at.get(access_key_id)
        return deadline is not None and (time.time() if now is None else now) >= deadline


class Emulator:
    """IMM + OSS + MNS on one local port.

    Args:
        seed: "demo" (default) for the demo project, None for an empty store, or a path to a JSON seed file.
        access_key_id / access_key_secret: the permanent key accepted (more with `keyring.add`).
        host / port: where to listen; port 0 picks a free port (read it from `port` after `start`).
        region: used in HostId and error messages.
        request_log_size: how many request records `requests` keeps (the oldest are dropped first).
    """

    def __init__(
        self,
        seed: str | None = "demo",
        access_key_id: str = "local-ak",
        access_key_secret: str = "local-secret",
        host: str = "127.0.0.1",
        port: int = 0,
        region: str = "cn-hangzhou",
        request_log_size: int = 100_000,
    ) -> None:
        from emulator.faults import FaultInjector
        from emulator.imm import ImmService
        from emulator.mns import MnsService
        from emulator.oss import OssService

        self.host = host
        self.region = region
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.keyring = Keyring()
        self.keyring.add(access_key_id, access_key_secret)
        self.faults = FaultInjector()
        self.imm = ImmService(self.keyring, region=region)
        self.oss = OssService(self.keyring, region=region)
        self.mns = MnsService(self.keyring, region=region)
        if seed is not None:
            from emulator.seed import load_seed

            load_seed(self, seed)
        # Order matters: IMM and MNS are recognised by their headers, OSS takes the rest.
        self.services: list[Any] = [self.imm, self.mns, self.oss]
        if request_log_size < 1:
            raise ValueError("request_log_size must be >= 1")
        self.requests: deque[RequestRecord] = deque(maxlen=request_log_size)
        self._log_lock = threading.Lock()
        self._stopping = threading.Event()  # wakes trickling answers up when the emulator stops
        self._requested_port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> Emulator:
        self._stopping.clear()
        handler = _make_handler(self)
        self._server = _QuietServer((self.host, self._requested_port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "emulator not started"
        return self._server.server_address[1]

    @property
    def endpoint(self) -> str:
        """host:port, the form IMM_ENDPOINT and the SDK's Config(endpoint=...) take."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    # -- dispatch --------------------------------------------------------------------------------------------
    def dispatch(self, request: Request) -> Response:
        started = time.time()
        service = next((s for s in self.services if s.matches(request)), self.oss)
        action = service.action_of(request)
        fault = self.faults.apply(service, action, request)
        response = fault
        if fault is None or fault.serve:
            try:
                response = service.handle(request)
            except Exception as exc:  # an emulator bug must look like a 500, not a hung client
                response = service.error_response(500, "InternalError", f"emulator error: {type(exc).__name__}")
            if fault is not None:
                response.trickle = fault.trickle
        assert response is not None
        with self._log_lock:
            self.requests.append(
                RequestRecord(
                    service=service.name,
                    action=action,
                    method=request.method,
                    path=request.path,
                    status=0 if response.drop else response.status,
                    access_key_id=_access_key_id_of(request),
                    at=time.time(),
                    started=started,
                    signing=_signing_of(request),
                    body=request.body,
                    query=_loggable_query(request.query),
                )
            )
        return response

    def calls(self, action: str | None = None, service: str | None = None) -> list[RequestRecord]:
        """Recorded requests, optionally filtered by action and service."""
        with self._log_lock:
            return [
                r
                for r in self.requests
                if (action is None or r.action == action) and (service is None or r.service == service)
            ]


class _QuietServer(ThreadingHTTPServer):
    """No traceback when a client hangs up first (a read timeout or a dropped-connection fault does exactly that).

    The listen backlog is raised from socketserver's 5: fifty clients connecting at once must not see resets.
    """

    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


# Query parameters that carry a signature or a security token (RPC V2, presigned OSS URLs): never kept in the log,
# whose records a failing test prints.
_SECRET_QUERY_KEYS = frozenset(
    {"signature", "securitytoken", "security-token", "x-oss-signature", "x-oss-security-token"}
)


def _loggable_query(query: str) -> str:
    """The query as received, or, when it carries a signature or token, rebuilt with those values masked."""
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(k.lower() in _SECRET_QUERY_KEYS for k, _ in pairs):
        return query
    return urlencode([(k, "***" if k.lower() in _SECRET_QUERY_KEYS else v) for k, v in pairs])


def _signing_of(request: Request) -> str:
    """The scheme's name: ACS3-HMAC-SHA256, HMAC-SHA1 (RPC V2), OSS4-HMAC-SHA256, OSS (V1) or MNS; "" if unsigned."""
    auth = request.header("authorization")
    if auth:
        return auth.split(" ", 1)[0]
    params = request.query_params
    if "x-oss-signature" in params:
        return "OSS4-HMAC-SHA256"  # a presigned V4 URL
    if "OSSAccessKeyId" in params:
        return "OSS"  # a presigned V1 URL
    if "Signature" in params:
        return params.get("SignatureMethod", "HMAC-SHA1")  # RPC V2
    return ""


def _access_key_id_of(request: Request) -> str | None:
    auth = request.header("authorization")
    if auth.startswith("ACS3-HMAC-SHA256 "):
        for part in auth.split(" ", 1)[1].split(","):
            if part.strip().startswith("Credential="):
                return part.strip()[len("Credential=") :]
    if auth.startswith(("OSS ", "MNS ")):
        return auth.split(" ", 1)[1].rsplit(":", 1)[0]
    if auth.startswith("OSS4-HMAC-SHA256 "):
        for part in auth.split(" ", 1)[1].split(","):
            if part.strip().startswith("Credential="):
                return part.strip()[len("Credential=") :].split("/", 1)[0]
    return request.query_params.get("AccessKeyId")


def _make_handler(emulator: Emulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "imm-emulator"

        def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read emulator.requests instead
            return

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in two writes; without NODELAY, Nagle + delayed ACK adds ~40 ms per call.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            split = urlsplit(self.path)
            request = Request(
                method=self.command,
                path=split.path or "/",
                query=split.query,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                client=self.client_address[0],
            )
            response = emulator.dispatch(request)
            if response.drop:
                self.close_connection = True
                try:
                    self.connection.shutdown(2)
                except OSError:
                    pass
                return
            self.send_response(response.status)
            headers = dict(response.headers)
            headers.setdefault("Content-Length", str(len(response.body)))
            for name, value in headers.items():
                self.send_header(name, value)
            body = response.body if self.command != "HEAD" else b""
            if response.trickle is None:
                self.end_headers()
                self.wfile.write(body)
                return
            self.close_connection = True  # a trickled answer may be abandoned half way: never reuse the socket
            self.send_header("Connection", "close")
            if response.trickle.headers:
                # The head goes out byte by byte too: take it from the buffer instead of flushing it.
                self._headers_buffer.append(b"\r\n")  # type: ignore[attr-defined]
                head = b"".join(self._headers_buffer)  # type: ignore[attr-defined]
                self._headers_buffer = []  # type: ignore[attr-defined]
                self._trickle(head + body, response.trickle)
            else:
                self.end_headers()
                self._trickle(body, response.trickle)

        def _trickle(self, data: bytes, trickle: Trickle) -> None:
            """Write `data` `trickle.chunk` bytes at a time, `trickle.interval` seconds apart; stop early when the
            emulator stops (the client then sees a connection closed mid-answer)."""
            step = max(1, int(trickle.chunk))
            for offset in range(0, len(data), step):
                if offset and emulator._stopping.wait(trickle.interval):
                    raise ConnectionAbortedError("emulator stopped while trickling an answer")
                self.wfile.write(data[offset : offset + step])

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

    return Handler
