"""The local development server (devtools.serve): real HTTP in, FC 3.0 HTTP events to handler.handler."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from http.server import ThreadingHTTPServer

import handler
from devtools.serve import make_http_handler, to_fc_event
from devtools.sign import curl_command
from imm_batch_updater.sources.http import HttpSource
from tests.conftest import PROJECT, READY, signed_headers


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
