"""Shared fixtures: a live emulator, the function's environment pointed at it, and FC-shaped events/contexts.

The only stand-in here is `FcContext`: FC's runtime context object cannot run outside FC, so tests build one
with the same attribute layout (request_id, credentials, function, region, account_id). Everything else is real:
the handler, the Alibaba SDKs, HTTP to the emulator, signature checks.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# alibabacloud_credentials reads these at import time: make sure no developer key leaks into a test run.
for _name in ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN"):
    os.environ.pop(_name, None)

import handler  # noqa: E402
from emulator import Emulator  # noqa: E402

# Hypothesis profiles: `ci` (default, sized for the CI budget), `long` (HYPOTHESIS_PROFILE=long, for local soak) and
# `compat` (`dev.py test --all-pythons` sets it for the passes on the other interpreters: `ci` derandomizes, so
# those passes would only draw the same examples again; they are there to run every test on 3.10 and 3.12).
HYPOTHESIS_PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
hypothesis_settings.register_profile("ci", max_examples=100, deadline=None, derandomize=True)
hypothesis_settings.register_profile("long", max_examples=5000, deadline=None)
hypothesis_settings.register_profile("compat", max_examples=10, deadline=None, derandomize=True)
hypothesis_settings.load_profile(HYPOTHESIS_PROFILE)


def examples(n: int) -> int:
    """A test's own example count under the profile: `n` in `ci`, at least 5,000 in `long`, a tenth in `compat`."""
    if HYPOTHESIS_PROFILE == "long":
        return max(n, 5000)
    if HYPOTHESIS_PROFILE == "compat":
        return max(10, n // 10)
    return n


FUNCTION_ENV = (
    "IMM_ENDPOINT IMM_PROTOCOL IMM_REGION IMM_NETWORK IMM_PROJECT IMM_PRECHECK HTTP_AUTH WEBHOOK_SECRET OSS_ENDPOINT "
    "IMM_MAX_ATTEMPTS IMM_BACKOFF_BASE_MS IMM_BACKOFF_MAX_MS IMM_CONNECT_TIMEOUT_MS IMM_READ_TIMEOUT_MS "
    "MAX_BODY_BYTES MAX_DOCUMENTS UPDATE_CONCURRENCY FC_REGION ALIBABA_CLOUD_ACCESS_KEY_ID "
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET ALIBABA_CLOUD_SECURITY_TOKEN "
    "RESULT_SINK_FILTER RESULT_MNS_FILTER RESULT_WEBHOOK_FILTER RESULT_FC_FILTER RESULT_SINK_TIMEOUT_MS "
    "RESULT_SINK_ATTEMPTS RESULT_MNS_TOPIC RESULT_MNS_ENDPOINT RESULT_WEBHOOK_URL RESULT_WEBHOOK_SECRET "
    "RESULT_FC_FUNCTION RESULT_FC_ENDPOINT TRIGGER_MNS_TOPICS OSS_MAX_OBJECT_BYTES "
    "WORK_QUEUE WORK_QUEUE_ENDPOINT FANOUT_BATCHES IMM_MAX_QPS FC_ACCOUNT_ID FC_FUNCTION_NAME"
).split()

PROJECT = "demo-project"
READY, RUNNING, FAILED = "batch-demo-ready", "batch-demo-running", "batch-demo-failed"


# ---- secret-leak guard ---------------------------------------------------------------------------------------
# Every key secret, security token and webhook secret a test creates is registered here; after each test, its
# captured stdout/stderr/log output and every line the function logged (tapped below, even if the test consumed it
# with capsys) are searched for them and for anything shaped like a request signature. A hit fails the test.
SECRETS: set[str] = set()
SIGNATURE_SHAPES = [
    re.compile(r"Signature=[0-9a-f]{64}"),  # ACS3-HMAC-SHA256 (IMM, FC 3.0)
    re.compile(r"v1,[A-Za-z0-9+/]{43}="),  # Standard Webhooks
    re.compile(r"\b(?:OSS|MNS) [^\s:\"']+:[A-Za-z0-9+/]{27}="),  # OSS V1 / MNS HMAC-SHA1
    re.compile(r"OSS4-HMAC-SHA256 Credential=[^\s]+Signature=[0-9a-f]{64}"),
]


def register_secret(*values: str | None) -> None:
    SECRETS.update(v for v in values if v and len(v) >= 8)


def find_leaks(text: str) -> list[str]:
    leaks = [f"secret ...{s[-4:]}" for s in SECRETS if s in text]
    leaks += [f"signature shape {p.pattern}" for p in SIGNATURE_SHAPES if p.search(text)]
    return leaks


_LOGGED: list[str] = []


# ---- settings follow the environment ---------------------------------------------------------------------------
# FC fixes an instance's environment, so the function parses its settings once (config.Settings.current). Tests
# change the environment all the time: every monkeypatch.setenv/delenv (and every test's start, after the previous
# test's monkeypatch restored the environment) makes it parse them again.
def _reloading(method):
    def wrapper(self, *args, **kwargs):
        result = method(self, *args, **kwargs)
        from imm_batch_updater.config import Settings

        Settings.reload()
        return result

    return wrapper


pytest.MonkeyPatch.setenv = _reloading(pytest.MonkeyPatch.setenv)
pytest.MonkeyPatch.delenv = _reloading(pytest.MonkeyPatch.delenv)


@pytest.fixture(autouse=True)
def _fresh_settings():
    from imm_batch_updater.config import Settings

    Settings.reload()
    yield
    Settings.reload()


@pytest.fixture(autouse=True)
def _tap_function_logs(monkeypatch):
    from imm_batch_updater import logs

    original = logs.log

    def tapped(level, msg, stream=None, **fields):
        _LOGGED.append(json.dumps({"level": level, "msg": msg, **fields}, default=str))
        original(level, msg, stream, **fields)

    monkeypatch.setattr(logs, "log", tapped)
    _LOGGED.clear()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    result = yield
    report = result.get_result()
    if report.when == "call" and report.passed:
        text = "\n".join(content for _, content in report.sections) + "\n" + "\n".join(_LOGGED)
        leaks = find_leaks(text)
        if leaks:
            report.outcome = "failed"
            report.longrepr = "secret material in the test's output: " + ", ".join(sorted(set(leaks)))


def new_secret() -> str:
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    register_secret(secret, secret[len("whsec_") :])
    return secret


class StsKey:
    """A fresh STS-style key triple for one test (random; never a real key)."""

    def __init__(self) -> None:
        self.access_key_id = "STS.test" + secrets.token_hex(6)
        self.access_key_secret = secrets.token_urlsafe(24)
        self.security_token = "tok-" + secrets.token_urlsafe(48)
        register_secret(self.access_key_secret, self.security_token)

    def as_context_credentials(self) -> SimpleNamespace:
        return SimpleNamespace(
            access_key_id=self.access_key_id,
            access_key_secret=self.access_key_secret,
            security_token=self.security_token,
        )


def fc_context(
    credentials: StsKey | None,
    timeout: float = 30,
    request_id: str | None = None,
    region: str = "cn-hangzhou",
) -> SimpleNamespace:
    """An object shaped like FC's python3.10 FCContext (see the module docstring for why this is a stand-in)."""
    return SimpleNamespace(
        request_id=request_id or str(uuid.uuid4()),
        credentials=credentials.as_context_credentials() if credentials else None,
        function=SimpleNamespace(name="imm-batch-updater", handler="handler.handler", memory=256, timeout=timeout),
        service=SimpleNamespace(log_project="p", log_store="s", qualifier="LATEST", version_id="1"),
        region=region,
        account_id="1234567890",
    )


def http_event(
    method: str = "POST",
    path: str = "/",
    body: bytes | str = b"",
    headers: dict[str, str] | None = None,
    base64_body: bool = False,
) -> bytes:
    """An FC 3.0 HTTP trigger event, as bytes (how the runtime hands it to the handler)."""
    raw = body.encode() if isinstance(body, str) else body
    event = {
        "version": "v1",
        "rawPath": path,
        "body": base64.b64encode(raw).decode() if base64_body else raw.decode("utf-8", "replace"),
        "isBase64Encoded": base64_body,
        "headers": headers or {},
        "queryParameters": {},
        "requestContext": {
            "accountId": "1234567890",
            "domainName": "x.cn-hangzhou.fcapp.run",
            "domainPrefix": "x",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "pytest",
            },
            "requestId": str(uuid.uuid4()),
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "timeEpoch": str(int(time.time() * 1000)),
        },
    }
    return json.dumps(event).encode()


def signed_headers(secret: str, body: bytes, msg_id: str | None = None, timestamp: int | None = None) -> dict[str, str]:
    from imm_batch_updater.webhooks import sign

    return sign(secret, msg_id or f"msg_{uuid.uuid4().hex}", body, timestamp)


@pytest.fixture
def emu():
    with Emulator(seed="demo") as emulator:
        yield emulator


@pytest.fixture
def sts(emu) -> StsKey:
    key = StsKey()
    emu.keyring.add(key.access_key_id, key.access_key_secret, key.security_token)
    return key


@pytest.fixture
def webhook_secret() -> str:
    return new_secret()


@pytest.fixture
def fn_env(emu, monkeypatch, webhook_secret):
    """The function's environment, pointed at the emulator; fast retries so fault tests stay quick."""
    for name in FUNCTION_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IMM_ENDPOINT", emu.endpoint)
    monkeypatch.setenv("IMM_PROTOCOL", "http")
    monkeypatch.setenv("IMM_REGION", "cn-hangzhou")
    monkeypatch.setenv("WEBHOOK_SECRET", webhook_secret)
    monkeypatch.setenv("IMM_BACKOFF_BASE_MS", "5")
    monkeypatch.setenv("IMM_BACKOFF_MAX_MS", "20")
    monkeypatch.setenv("OSS_ENDPOINT", emu.url)
    return monkeypatch


@pytest.fixture
def app():
    """The deployed entry point's App (`handler.app`), with the replay memory cleared between tests."""
    import handler
    from imm_batch_updater.webhooks import ReplayGuard

    handler.app.sources.http.replay = ReplayGuard()
    return handler.app


class Invoker:
    """Calls `handler.handler` the way FC does: the event as bytes, an FC-shaped context."""

    def __init__(self, app, sts: StsKey, secret: str) -> None:
        self.app, self.sts, self.secret = app, sts, secret

    def direct(self, document: Any, context=None, raw: bytes | None = None) -> dict[str, Any]:
        event = raw if raw is not None else json.dumps(document).encode()
        return handler.handler(event, context or fc_context(self.sts))

    def post(
        self,
        document: Any = None,
        *,
        body: bytes | None = None,
        headers=None,
        sign=True,
        path="/",
        method="POST",
        context=None,
        base64_body=False,
    ) -> tuple[int, dict[str, Any], dict[str, Any]]:
        raw = body if body is not None else json.dumps(document).encode()
        hdrs = dict(headers or {})
        if sign:
            hdrs.update(signed_headers(self.secret, raw))
        event = http_event(method, path, raw, hdrs, base64_body=base64_body)
        response = handler.handler(event, context or fc_context(self.sts))
        assert set(response) == {"statusCode", "headers", "isBase64Encoded", "body"}
        return response["statusCode"], json.loads(response["body"]), response["headers"]


@pytest.fixture
def invoke(fn_env, app, sts, webhook_secret) -> Invoker:
    return Invoker(app, sts, webhook_secret)


@pytest.fixture
def work_queue(emu, fn_env):
    """WORK_QUEUE: a queue in the emulator's MNS; selections of more than 20 batches fan out to it."""
    from tests.fleet.selections import QUEUE

    emu.mns.create_queue(QUEUE)
    fn_env.setenv("WORK_QUEUE", QUEUE)
    fn_env.setenv("WORK_QUEUE_ENDPOINT", emu.url)
    fn_env.setenv("FANOUT_BATCHES", "20")
    return QUEUE
