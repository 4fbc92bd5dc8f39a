"""The local development server (devtools.serve): real HTTP in, FC 3.0 HTTP events to handler.handler."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

import handler
from devtools.serve import make_http_handler, to_fc_event
from devtools.sign import curl_command
from imm_batch_updater.sources.http import HttpSource
from tests.conftest import PROJECT, READY, new_secret, signed_headers
from tests.tools import closed_port, run_tool

ROOT = Path(__file__).resolve().parents[2]


def test_request_becomes_an_fc_http_event():
    event = to_fc_event("POST", "/a%20b/?x=1&x=2", {"Webhook-Id": "m"}, b"\xff\x00", "127.0.0.1")
    assert HttpSource().matches(event)
    assert event["rawPath"] == "/a%20b/" and event["requestContext"]["http"]["path"] == "/a b/"
    assert event["queryParameters"] == {"x": "1,2"} and event["isBase64Encoded"] is True


def test_curl_through_a_real_port(fn_env, emu, sts, app, webhook_secret):
    fn_env.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", sts.access_key_id)
    fn_env.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", sts.access_key_secret)
    fn_env.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", sts.security_token)
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_http_handler(handler.handler, 10))
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        body = json.dumps({"ProjectName": PROJECT, "Id": READY, "Tags": {"via": "curl"}}).encode()
        request = urllib.request.Request(url, data=body, method="POST", headers=signed_headers(webhook_secret, body))
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200 and json.loads(response.read())["results"][0]["status"] == "updated"
        assert emu.imm.get_batch(PROJECT, READY)["Tags"] == {"via": "curl"}
        try:
            urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"), timeout=10)
            raise AssertionError("unsigned request accepted")
        except urllib.error.HTTPError as exc:
            assert exc.code == 401
        with urllib.request.urlopen(url + "healthz", timeout=10) as response:
            assert response.status == 200
    finally:
        server.shutdown()
        server.server_close()


def test_printed_curl_command_is_signed_for_its_body(webhook_secret):
    command = curl_command("http://127.0.0.1:9000/", webhook_secret, b'{"a":1}')
    assert "webhook-signature: v1," in command and "--data-binary" in command and webhook_secret not in command


# -- the newcomer's path: what `python3 dev.py serve / invoke / sign` print and refuse ------------------------------
def _clean_env(**extra: str) -> dict[str, str]:
    """The environment of a new shell: none of the variables that select IMM, keys or the webhook secret."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMM_", "ALIBABA_CLOUD_", "OSS_", "RESULT_"))}
    env.pop("WEBHOOK_SECRET", None)
    env.pop("HTTP_AUTH", None)
    return {**env, **extra}


KEYS = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI-not-a-real-key", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "not-a-real-secret"}


@pytest.mark.parametrize("option", ["--port", "--emulator-port"])
def test_a_taken_port_is_one_line_naming_it_and_the_option(option):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        other = "--emulator-port" if option == "--port" else "--port"
        proc = run_tool("devtools.serve", option, str(port), other, str(closed_port()), env=_clean_env())
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert f"port {port} on 127.0.0.1" in line and "already in use" in line and f"{option} " in line
    assert "listening" not in proc.stdout


def test_an_endpoint_without_keys_stops_instead_of_using_the_emulator():
    proc = run_tool("devtools.invoke", "examples/direct.json", env=_clean_env(IMM_ENDPOINT="127.0.0.1:1"))
    assert proc.returncode == 2
    assert "IMM_ENDPOINT=127.0.0.1:1" in proc.stderr and "ALIBABA_CLOUD_ACCESS_KEY_ID" in proc.stderr
    assert "result:" not in proc.stdout and "emulator batches" not in proc.stdout  # nothing ran


def test_an_unreachable_endpoint_is_a_clear_failure():
    port = closed_port()
    env = _clean_env(IMM_ENDPOINT=f"127.0.0.1:{port}", **KEYS)
    for module, args in (("devtools.invoke", ["examples/direct.json"]), ("devtools.serve", ["--port", "0"])):
        proc = run_tool(module, *args, env=env)
        assert proc.returncode == 1, (module, proc.returncode)
        assert f"cannot reach IMM at https://127.0.0.1:{port}" in proc.stderr, module
        assert "Traceback" not in proc.stderr and "result:" not in proc.stdout and "listening" not in proc.stdout


def test_a_region_with_keys_means_real_imm_and_without_keys_says_what_to_set():
    from devtools.target import TargetError, choose

    assert not choose({}).real
    assert not choose(KEYS).real  # keys alone: the emulator (dev.py invoke notes it)
    real = choose({"IMM_REGION": "cn-hangzhou", **KEYS})
    assert real.real and (real.host, real.port, real.protocol) == ("imm.cn-hangzhou.aliyuncs.com", 443, "https")
    vpc = choose({"IMM_REGION": "cn-shanghai", "IMM_NETWORK": "vpc", **KEYS})
    assert vpc.address == "https://imm-vpc.cn-shanghai.aliyuncs.com:443"
    local = choose({"IMM_ENDPOINT": "127.0.0.1:9100", "IMM_PROTOCOL": "http", **KEYS})
    assert local.address == "http://127.0.0.1:9100"
    with pytest.raises(TargetError, match="ALIBABA_CLOUD_ACCESS_KEY_SECRET"):
        choose({"IMM_REGION": "cn-hangzhou", "ALIBABA_CLOUD_ACCESS_KEY_ID": "x"})


def test_readme_and_code_agree_on_what_selects_real_imm():
    readme = (ROOT / "README.md").read_text()
    local = readme.split("## Try it locally", 1)[1].split("\n## ", 1)[0]
    assert "IMM_REGION" in local and "IMM_ENDPOINT" in local and "ALIBABA_CLOUD_ACCESS_KEY_ID" in local
    assert "--port" in local and "--emulator-port" in local


def test_help_and_docs_name_only_example_files_that_exist():
    texts = [run_tool("devtools.sign", "--help", env=_clean_env()).stdout]
    texts += [run_tool("devtools.invoke", "--help", env=_clean_env()).stdout]
    texts += [(ROOT / "README.md").read_text(), (ROOT / "examples" / "README.md").read_text()]
    named = {m for text in texts for m in re.findall(r"examples/[a-z0-9][\w.-]*\.json", text)}
    assert "examples/direct.json" in named
    assert not [n for n in named if not (ROOT / n).is_file()]


def test_the_banner_says_how_to_sign_more_from_a_plain_shell(webhook_secret, monkeypatch):
    from devtools.serve import banner
    from devtools.target import Target

    monkeypatch.setenv("WEBHOOK_SECRET", webhook_secret)
    monkeypatch.delenv("HTTP_AUTH", raising=False)
    emu = SimpleNamespace(url="http://127.0.0.1:9100", access_key_id="local-ak")
    text = banner("http://127.0.0.1:9001/", emu, Target(real=False), generated_secret=True)
    assert f"export WEBHOOK_SECRET='{webhook_secret}'" in text  # a secret generated for the session, never yours
    assert "python3 dev.py sign --send --url http://127.0.0.1:9001/ examples/direct.json" in text
    assert "python -m devtools.sign" not in text
    yours = banner("http://127.0.0.1:9000/", emu, Target(real=False), generated_secret=False)
    assert webhook_secret not in yours and "python3 dev.py sign --send examples/direct.json" in yours


def test_sign_send_posts_a_signed_request(fn_env, emu, sts, app, webhook_secret):
    from devtools.sign import send

    fn_env.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", sts.access_key_id)
    fn_env.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", sts.access_key_secret)
    fn_env.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", sts.security_token)
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_http_handler(handler.handler, 10))
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        status, answer = send(url, webhook_secret, (ROOT / "examples" / "direct.json").read_bytes())
        assert status == 200 and json.loads(answer)["results"][0]["status"] == "updated"
        status, _ = send(url, new_secret(), b'{"ProjectName": "demo-project"}')
        assert status == 401
    finally:
        server.shutdown()
        server.server_close()


def test_serve_fans_out_to_a_local_work_queue_and_pumps_it_back(webhook_secret):
    """`WORK_QUEUE=… dev.py serve`: the queue is made in the emulator and delivered back to the function, so a
    fan-out runs end to end from a plain shell (README "Fleet updates", locally)."""
    import time

    from alibabacloud_imm20200930 import models
    from alibabacloud_imm20200930.client import Client
    from alibabacloud_tea_openapi.models import Config
    from darabonba.runtime import RuntimeOptions

    port, emulator_port = closed_port(), closed_port()
    env = _clean_env(WORK_QUEUE="local-work", FANOUT_BATCHES="2", WEBHOOK_SECRET=webhook_secret)
    proc = subprocess.Popen(
        [sys.executable, "-m", "devtools.serve", "--port", str(port), "--emulator-port", str(emulator_port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        banner = ""
        while "work queue local-work" not in banner:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            banner += line
        body = json.dumps(
            {"ProjectName": PROJECT, "Selector": {"TagSelector": "env=demo"}, "Tags": {"env": "demo", "via": "queue"}}
        ).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/", data=body, method="POST", headers=signed_headers(webhook_secret, body)
        )
        with urllib.request.urlopen(request, timeout=20) as response:
            answer = json.loads(response.read())
            assert response.status == 202 and {r["status"] for r in answer["results"]} == {"queued"}
        imm = Client(
            Config(
                access_key_id="local-ak",
                access_key_secret="local-secret",
                endpoint=f"127.0.0.1:{emulator_port}",
                protocol="http",
            )
        )
        deadline = time.monotonic() + 20
        while True:
            batch = imm.get_batch_with_options(models.GetBatchRequest(project_name=PROJECT, id=READY), RuntimeOptions())
            if batch.body.batch.tags == {"env": "demo", "via": "queue"} or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert batch.body.batch.tags == {"env": "demo", "via": "queue"}  # applied by the pump's delivery
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
