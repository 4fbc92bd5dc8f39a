"""What a new user's trial of the local tools ran into, each driven through the real command (`python -m devtools.X`,
what `python3 dev.py X` runs) against an emulator: the pump stays on the emulator's IMM, invoke keeps MNS local,
`sign --send` output feeds `revert` and a 401 says which secret to sign with, revert refuses input it cannot
revert, serve refuses a secret the function would leave out, invoke's bad arguments are one line, the emulator
banner tells the truth about queues (and a taken port names --port), and examples/README.md says what the timer
config-object example answers."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

import handler
from devtools.serve import make_http_handler
from emulator import Emulator
from emulator.__main__ import banner
from tests.conftest import PROJECT, READY, new_secret
from tests.tools import closed_port, run_tool

ROOT = Path(__file__).resolve().parents[2]
QUEUE = "imm-batch-updater-work"
TOPIC = "imm-batch-updater-results"  # in the demo seed


def _clean_env(**extra: str) -> dict[str, str]:
    """A new user's shell: nothing that selects IMM, MNS, keys, sinks or the webhook secret."""
    drop = ("IMM_", "ALIBABA_CLOUD_", "OSS_", "RESULT_", "WEBHOOK_", "HTTP_AUTH", "WORK_QUEUE", "FANOUT_")
    return {**{k: v for k, v in os.environ.items() if not k.startswith(drop)}, **extra}


def _no_traceback_one_line(proc: subprocess.CompletedProcess[str], prefix: str) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, proc.stderr[-2000:]
    return lines[0]


# -- 1. the pump ----------------------------------------------------------------------------------------------------
def _send_work(emu: Emulator, documents: list[dict]) -> None:
    from mns.account import Account
    from mns.queue import Message

    queue = Account(emu.url, emu.access_key_id, emu.access_key_secret).get_queue(QUEUE)
    queue.set_encoding(False)
    queue.send_message(Message(json.dumps(documents)))


def _emulator_keys(emu: Emulator, **extra: str) -> dict[str, str]:
    """The shell after the `dev.py emulator` banner's key line, with no IMM_ENDPOINT exported."""
    return _clean_env(
        ALIBABA_CLOUD_ACCESS_KEY_ID=emu.access_key_id,
        ALIBABA_CLOUD_ACCESS_KEY_SECRET=emu.access_key_secret,
        IMM_MAX_ATTEMPTS="1",
        **extra,
    )


def test_a_standalone_pump_on_a_local_queue_applies_it_to_that_emulator_not_real_imm():
    with Emulator(seed="demo") as emu:
        emu.mns.create_queue(QUEUE)
        _send_work(emu, [{"ProjectName": PROJECT, "Id": READY, "Tags": {"via": "pump"}}])
        proc = run_tool("devtools.pump", "--once", "--queue", QUEUE, "--mns", emu.url, env=_emulator_keys(emu))
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert emu.imm.get_batch(PROJECT, READY)["Tags"] == {"via": "pump"}
        assert "aliyuncs.com" not in proc.stdout + proc.stderr
        assert f"IMM: the emulator at {emu.url}" in proc.stderr and "1 message(s) delivered" in proc.stderr
        assert emu.mns.queue_messages(QUEUE) == []


def test_pump_once_after_a_delivery_that_is_not_final_says_so_and_exits_1():
    with Emulator(seed="demo") as emu:
        emu.mns.create_queue(QUEUE)
        emu.faults.inject("UpdateBatch", "unavailable", count=100)
        _send_work(emu, [{"ProjectName": PROJECT, "Id": READY, "Tags": {"via": "pump"}}])
        proc = run_tool("devtools.pump", "--once", "--queue", QUEUE, "--mns", emu.url, env=_emulator_keys(emu))
        assert proc.returncode == 1, proc.stderr[-2000:]
        assert "1 delivery(ies) not final" in proc.stderr and "left on the queue" in proc.stderr


def test_pump_with_a_missing_queue_or_no_mns_is_one_line_naming_endpoint_and_queue():
    with Emulator(seed="demo") as emu:
        url = emu.url
        missing = run_tool("devtools.pump", "--once", "--queue", "work", "--mns", url, env=_emulator_keys(emu))
    assert missing.returncode == 1
    line = _no_traceback_one_line(missing, "dev.py pump:")
    assert "queue work does not exist" in line and url in line
    closed = f"http://127.0.0.1:{closed_port()}"
    refused = run_tool("devtools.pump", "--once", "--queue", "work", "--mns", closed, env=_clean_env())
    assert refused.returncode == 1
    line = _no_traceback_one_line(refused, "dev.py pump:")
    assert closed in line and "queue work" in line and "no answer from MNS" in line


def test_pump_help_names_the_dev_py_command():
    proc = run_tool("devtools.pump", "--help", env=_clean_env())
    assert proc.returncode == 0 and proc.stdout.startswith("usage: python3 dev.py pump")


# -- 2. invoke keeps MNS local ------------------------------------------------------------------------------------
def _invoke(*args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    proc = run_tool("devtools.invoke", *args, env=_clean_env(**env))
    assert "result:\n" in proc.stdout, proc.stderr[-2000:]
    result = json.loads(proc.stdout.split("result:\n", 1)[1].split("emulator batches", 1)[0])
    return proc, result


def test_invoke_fans_out_to_a_work_queue_in_its_emulator(tmp_path):
    selector = tmp_path / "sel.json"
    selector.write_text(json.dumps({"ProjectName": PROJECT, "Selector": {"TagSelector": "env=demo"}, "Tags": {"a": 1}}))
    proc, result = _invoke(str(selector), WORK_QUEUE="local-work", FANOUT_BATCHES="2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(result["results"]) == 3
    assert {(r["status"], r["queue"]) for r in result["results"]} == {("queued", "local-work")}


def test_invoke_publishes_results_to_the_emulators_topic():
    proc, result = _invoke("examples/direct.json", RESULT_MNS_TOPIC=TOPIC)
    assert proc.returncode == 0 and [r["status"] for r in result["results"]] == ["updated"]
    assert '"sink failed"' not in proc.stdout and "sink failed" not in proc.stderr


# -- 3. sign --send feeds revert ------------------------------------------------------------------------------------
def test_sign_send_prints_only_the_answer_on_stdout_and_revert_reads_it(fn_env, emu, app, webhook_secret, tmp_path):
    for name, value in (("ACCESS_KEY_ID", emu.access_key_id), ("ACCESS_KEY_SECRET", emu.access_key_secret)):
        fn_env.setenv(f"ALIBABA_CLOUD_{name}", value)
    before = emu.imm.get_batch(PROJECT, READY)["Tags"]
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_http_handler(handler.handler, 10))
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        document = tmp_path / "doc.json"
        document.write_text(json.dumps({"ProjectName": PROJECT, "Id": READY, "Tags": {"owner": "trial"}}))
        sent = run_tool(
            "devtools.sign", "--send", "--url", url, str(document), env=_clean_env(WEBHOOK_SECRET=webhook_secret)
        )
    finally:
        server.shutdown()
        server.server_close()
    assert sent.returncode == 0 and sent.stderr.strip() == "HTTP 200", sent.stderr[-500:]
    assert json.loads(sent.stdout)["results"][0]["status"] == "updated"  # stdout is exactly the body
    results = tmp_path / "results.json"
    results.write_text(sent.stdout)
    reverted = run_tool("devtools.revert", str(results), env=_clean_env())
    assert reverted.returncode == 0, reverted.stderr
    assert json.loads(reverted.stdout) == [{"ProjectName": PROJECT, "Id": READY, "Tags": before}]


def test_sign_send_answered_401_says_which_secret_to_sign_with(fn_env, emu, app, webhook_secret, tmp_path):
    """A new `serve` session makes a new secret: a shell still holding the last one's gets 401, and the command says
    what to do about it (the function's own answer only says the signature is not valid)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_http_handler(handler.handler, 10))
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        stale = new_secret()
        assert stale != webhook_secret
        sent = run_tool(
            "devtools.sign", "--send", "--url", url, "examples/direct.json", env=_clean_env(WEBHOOK_SECRET=stale)
        )
    finally:
        server.shutdown()
        server.server_close()
    assert sent.returncode == 1 and "Traceback" not in sent.stderr
    assert json.loads(sent.stdout)["results"][0]["status"] == "rejected"  # stdout is still exactly the answer
    assert sent.stderr.splitlines()[0] == "HTTP 401"
    hint = _no_traceback_one_line(sent, "dev.py sign:")
    assert "WEBHOOK_SECRET" in hint and "python3 dev.py serve" in hint and "docs/deploy.md" in hint
    assert stale not in sent.stderr and webhook_secret not in sent.stderr
    assert emu.calls(action="UpdateBatch") == []


def _sign_send_to(request_handler):
    """`dev.py sign --send examples/direct.json` to a local server answering with `request_handler`."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), request_handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        return run_tool(
            "devtools.sign", "--send", "--url", url, "examples/direct.json", env=_clean_env(WEBHOOK_SECRET=new_secret())
        )
    finally:
        server.shutdown()
        server.server_close()


def test_sign_send_exits_1_on_an_answer_that_is_not_2xx_a_3xx_included(tmp_path):
    """README: `sign --send` exits 1 when the answer is not 2xx. A 3xx urllib does not follow (300, 304) is not a
    delivery either (a proxy or a wrong URL answered)."""
    from http.server import BaseHTTPRequestHandler

    class Answer300(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 -- http.server's name
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            body = b'{"moved": true}'
            self.send_response(300)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    sent = _sign_send_to(Answer300)
    assert sent.stderr.splitlines()[0] == "HTTP 300" and json.loads(sent.stdout) == {"moved": True}
    assert sent.returncode == 1


def test_revert_reads_log_lines_among_other_output(tmp_path):
    outcome = {"msg": "outcome", "status": "updated", "project": "p", "batch_id": "b"}
    outcome["diff"] = {"Tags": {"from": {"v": "0"}, "to": {"v": "1"}}}
    log = tmp_path / "serve.out"
    log.write_text(
        "imm-batch-updater listening on http://127.0.0.1:9000/  ->  IMM: emulator\n\ncurl -sS -X POST ... "
        '--data-binary \'{"ProjectName": "p"}\'\n'
        + json.dumps({"msg": "configuration", "level": "WARNING"})
        + "\n"
        + json.dumps(outcome)
        + "\nCtrl-C stops.\n"
    )
    proc = run_tool("devtools.revert", str(log), env=_clean_env())
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [{"ProjectName": "p", "Id": "b", "Tags": {"v": "0"}}]
    banner_only = tmp_path / "banner.out"
    banner_only.write_text("imm-batch-updater listening on http://127.0.0.1:9000/\nCtrl-C stops.\n")
    proc = run_tool("devtools.revert", str(banner_only), env=_clean_env())
    assert proc.returncode == 2 and proc.stdout == ""
    assert "holds no result" in _no_traceback_one_line(proc, "dev.py revert:")


# -- 4. revert refuses what it cannot revert --------------------------------------------------------------------------
def test_revert_of_something_that_is_not_results_is_an_error(tmp_path):
    path = tmp_path / "foo.json"
    path.write_text('{"foo": 1}')
    proc = run_tool("devtools.revert", str(path), env=_clean_env())
    assert proc.returncode == 2 and proc.stdout == ""
    assert "not results or outcome log lines" in _no_traceback_one_line(proc, "dev.py revert:")


def test_revert_of_queued_results_says_to_use_the_log_lines_and_exits_1(tmp_path):
    queued = [
        {"status": "queued", "project": "p", "batch_id": f"b{i}", "queue": QUEUE, "state": "Ready"} for i in range(3)
    ]
    path = tmp_path / "queued.json"
    path.write_text(json.dumps({"results": queued}))
    proc = run_tool("devtools.revert", str(path), env=_clean_env())
    assert proc.returncode == 1 and proc.stdout == ""
    line = _no_traceback_one_line(proc, "dev.py revert:")
    assert "3 result(s) are `queued`" in line and "log lines" in line
    help_text = run_tool("devtools.revert", "--help", env=_clean_env()).stdout
    assert "exit codes" in help_text and "queued" in help_text


# -- 5. serve refuses a secret the function would leave out ---------------------------------------------------------
def test_serve_refuses_a_short_or_malformed_webhook_secret_at_startup():
    for secret in ("whsec_dGVzdA==", "whsec_not*base64", "plain-text-secret"):
        env = _clean_env(WEBHOOK_SECRET=secret)
        proc = run_tool("devtools.serve", "--port", "0", "--emulator-port", "0", env=env, timeout=30)
        assert proc.returncode == 2, (secret, proc.stdout[-500:], proc.stderr[-500:])
        line = _no_traceback_one_line(proc, "dev.py serve:")
        assert "whsec_ and base64 of at least 24 bytes" in line and "401" in line
        assert secret not in proc.stdout + proc.stderr and "listening" not in proc.stdout


# -- 6. invoke's bad arguments --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["examples/no-such-event.json"], "cannot read the event file examples/no-such-event.json"),
        (["examples/oss-put.json", "--upload-object", "nope.json"], "cannot read the --upload-object file nope.json"),
        (["examples/direct.json", "--fault", "bogus"], "bad --fault"),
        (["examples/direct.json", "--fault", "UpdateBatch:no-such-kind"], "no-such-kind"),
    ],
)
def test_invoke_bad_arguments_are_one_line_and_exit_2(args, expected):
    proc = run_tool("devtools.invoke", *args, env=_clean_env())
    assert proc.returncode == 2 and "result:" not in proc.stdout
    assert expected in _no_traceback_one_line(proc, "dev.py invoke:")


# -- 7. the emulator banner on WORK_QUEUE ---------------------------------------------------------------------------
def test_the_emulator_banner_offers_only_a_queue_that_exists():
    with Emulator(seed="demo") as emu:
        text, queues = banner(emu), emu.mns.queues()
    assert "a queue in the seed" not in text
    if not queues:  # the demo seed has no queue: the banner says how to get one
        assert "no MNS queue" in text and "WORK_QUEUE=NAME python3 dev.py serve" in text
        assert "a seed file replaces the" in text and "demo data, demo-project included" in text  # its cost
    with Emulator(seed={"mns": {"queues": [QUEUE]}}) as emu:
        assert f"WORK_QUEUE={QUEUE}" in banner(emu)


# -- 8. examples/README.md ------------------------------------------------------------------------------------------
def test_examples_readme_says_what_the_config_object_timer_answers_without_an_upload():
    proc, result = _invoke("examples/timer-config-object.json")
    [code] = {r["error"]["code"] for r in result["results"]}
    assert "--upload-object" in proc.stderr and "examples/README.md names one for each example" in proc.stderr
    readme = (ROOT / "examples" / "README.md").read_text()
    [row] = [line for line in readme.splitlines() if line.startswith("| `timer-config-object.json`")]
    assert f"without: `invalid` (`{code}`" in row and "hints at `--upload-object`" in row
    assert re.search(r"restart(ing)? .*serve|serve.*restart", readme)


# -- 9. the emulator on a port already taken ------------------------------------------------------------------------
def test_the_emulator_on_a_taken_port_says_how_to_pick_another():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run_tool("emulator", "--port", str(port), env=_clean_env(), timeout=30)
    assert proc.returncode == 2 and "listening" not in proc.stdout
    line = _no_traceback_one_line(proc, "error:")
    assert f"cannot listen on 127.0.0.1:{port}" in line and "choose another with --port" in line


def test_sign_send_does_not_follow_a_redirect_with_the_signed_headers(tmp_path):
    """urllib follows a 301/302/303 answer to a POST with a GET to the Location, carrying every header: the
    webhook-signature went to wherever the redirect pointed, and the exit code was that GET's (0 on its 200), not
    1 for the 3xx the function's URL answered (README: exits 1 when the answer is not 2xx)."""
    from http.server import BaseHTTPRequestHandler

    seen: list[tuple[str, str | None]] = []

    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 -- http.server's name
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            seen.append(("POST", self.headers.get("webhook-signature")))
            self.send_response(302)
            self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self):  # noqa: N802 -- http.server's name
            seen.append(("GET", self.headers.get("webhook-signature")))
            body = b'{"elsewhere": true}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    sent = _sign_send_to(Redirect)
    assert [method for method, _ in seen] == ["POST"]  # the redirect is not followed: no signed GET elsewhere
    assert sent.stderr.splitlines()[0] == "HTTP 302"
    assert sent.returncode == 1
