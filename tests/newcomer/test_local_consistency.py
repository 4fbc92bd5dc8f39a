"""Two things a new user's trial found the local tools disagreeing on, each driven through the real command
(`python -m devtools.X`, what `python3 dev.py X` runs): the function name in the outcome log lines of `serve`,
`pump` and `invoke`, and the sample `curl` that `serve` prints when its IMM is not the bundled demo emulator."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request

from emulator import Emulator
from tests.conftest import PROJECT, READY, new_secret
from tests.tools import ROOT, closed_port, run_tool

QUEUE = "imm-batch-updater-work"


def _clean_env(**extra: str) -> dict[str, str]:
    """A new user's shell: nothing that selects IMM, MNS, keys, sinks or the webhook secret."""
    drop = ("IMM_", "ALIBABA_CLOUD_", "OSS_", "RESULT_", "WEBHOOK_", "HTTP_AUTH", "WORK_QUEUE", "FANOUT_", "FC_")
    return {**{k: v for k, v in os.environ.items() if not k.startswith(drop)}, **extra}


def _function_names(text: str) -> dict[str, set[str]]:
    """source -> the `function` of every outcome log line in `text`."""
    names: dict[str, set[str]] = {}
    for line in text.splitlines():
        if line.startswith("{") and '"msg":"outcome"' in line:
            record = json.loads(line)
            names.setdefault(record["source"], set()).add(record["function"])
    return names


def _deployed_name() -> str:
    """The function's name in s.yaml (what FC passes as context.function.name, and what its log lines carry)."""
    match = re.search(r"^\s*functionName:\s*([\w-]+)\s*$", (ROOT / "s.yaml").read_text(), re.MULTILINE)
    assert match, "s.yaml names no functionName"
    return match.group(1)


class _Serve:
    """`python3 dev.py serve` in the background, its stdout collected line by line."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = closed_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        args = ["--port", str(self.port), "--emulator-port", str(closed_port())]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "devtools.serve", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(iter(self.proc.stdout.readline, "")))
        self.reader.start()

    def wait_until_up(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}healthz", timeout=5) as answer:
                    assert answer.status == 200
                    return
            except OSError:
                assert self.proc.poll() is None and time.monotonic() < deadline, self.proc.stderr.read()
                time.sleep(0.2)

    def wait_for(self, needle: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any(needle in line for line in list(self.lines)):
            assert self.proc.poll() is None and time.monotonic() < deadline, "".join(self.lines)[-3000:]
            time.sleep(0.1)

    def stop(self) -> str:
        self.proc.terminate()
        _, err = self.proc.communicate(timeout=20)
        self.reader.join(timeout=5)
        assert "Traceback" not in err, err[-2000:]
        return "".join(self.lines)


# -- 1. one function name -------------------------------------------------------------------------------------------
def test_serve_pump_and_invoke_log_outcomes_under_the_deployed_function_name(tmp_path):
    """Before: `serve` logged its HTTP outcomes as `imm-batch-updater-local` and the work its own pump delivered as
    `imm-batch-updater`, as `pump` and `invoke` did: one invocation's lines could not be grepped by one name."""
    name = _deployed_name()
    selector = tmp_path / "selector.json"
    selector.write_text(json.dumps({"ProjectName": PROJECT, "Selector": {"TagSelector": "env=demo"}, "Tags": {"a": 1}}))
    secret = new_secret()
    serve = _Serve(_clean_env(WORK_QUEUE="local-work", FANOUT_BATCHES="2", WEBHOOK_SECRET=secret))
    try:
        serve.wait_until_up()
        sent = run_tool(
            "devtools.sign", "--send", "--url", serve.url, str(selector), env=_clean_env(WEBHOOK_SECRET=secret)
        )
        assert sent.returncode == 0 and "HTTP 202" in sent.stderr, sent.stderr[-2000:]
        serve.wait_for('"source":"mns_queue"')  # the serve's own pump delivered the queued work
    finally:
        served = serve.stop()
    assert _function_names(served) == {"http": {name}, "mns_queue": {name}}, served[-3000:]

    with Emulator(seed="demo") as emu:
        emu.mns.create_queue(QUEUE)
        from mns.account import Account
        from mns.queue import Message

        queue = Account(emu.url, emu.access_key_id, emu.access_key_secret).get_queue(QUEUE)
        queue.set_encoding(False)
        queue.send_message(Message(json.dumps([{"ProjectName": PROJECT, "Id": READY, "Tags": {"via": "pump"}}])))
        keys = {
            "ALIBABA_CLOUD_ACCESS_KEY_ID": emu.access_key_id,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": emu.access_key_secret,
        }
        pumped = run_tool("devtools.pump", "--once", "--queue", QUEUE, "--mns", emu.url, env=_clean_env(**keys))
    assert pumped.returncode == 0, pumped.stderr[-2000:]
    assert _function_names(pumped.stdout + pumped.stderr) == {"mns_queue": {name}}

    invoked = run_tool("devtools.invoke", "examples/direct.json", env=_clean_env())
    assert invoked.returncode == 0, invoked.stderr[-2000:]
    assert _function_names(invoked.stdout + invoked.stderr) == {"direct": {name}}


def test_the_local_tools_build_one_function_context():
    """context.function is FC's for the deployed function (s.yaml's name and memorySize) in every local tool."""
    from devtools import invoke, pump, serve

    functions = [
        serve.local_context(30).function,
        pump.fc_context(pump.Key("ak", "secret"), timeout=30).function,
        invoke.fc_context(30, None, "cn-hangzhou").function,
    ]
    assert {(f.name, f.handler, f.memory, f.timeout) for f in functions} == {
        (_deployed_name(), "handler.handler", 512, 30)
    }
    memory = re.search(r"^\s*memorySize:\s*(\d+)", (ROOT / "s.yaml").read_text(), re.MULTILINE)
    assert memory and int(memory.group(1)) == 512


# -- 2. the sample curl names the demo batch ------------------------------------------------------------------------
def _banner_of_serve_on(emu: Emulator) -> str:
    env = _clean_env(
        IMM_ENDPOINT=emu.endpoint,
        IMM_PROTOCOL="http",
        IMM_REGION=emu.region,
        ALIBABA_CLOUD_ACCESS_KEY_ID=emu.access_key_id,
        ALIBABA_CLOUD_ACCESS_KEY_SECRET=emu.access_key_secret,
    )
    serve = _Serve(env)
    try:
        serve.wait_until_up()
    finally:
        out = serve.stop()
    return out.split("Ctrl-C stops.", 1)[0]


def test_serve_on_an_imm_of_your_own_says_the_sample_names_the_demo_batch():
    """Before: pointed at a seeded emulator (or real IMM) through IMM_ENDPOINT, serve printed the same sample curl
    for demo-project/batch-demo-ready with no word that it exists only in the bundled demo data: pasted, it answered
    404 `not_found`."""
    with Emulator(seed={"imm": {"projects": {"fleet-project": {"batches": [{"Id": "b1", "State": "Ready"}]}}}}) as emu:
        banner = _banner_of_serve_on(emu)
    assert "batch-demo-ready" in banner  # the sample itself is unchanged
    [hint] = [line for line in banner.splitlines() if "names the demo batch" in line]
    assert "demo-project/batch-demo-ready" in hint and "IMM_ENDPOINT" in hint, banner
    assert "examples/direct.json" in hint, hint  # the files `sign` is shown with name the demo batch too


def test_serve_on_the_bundled_emulator_has_no_such_hint():
    serve = _Serve(_clean_env())
    try:
        serve.wait_until_up()
    finally:
        banner = serve.stop().split("Ctrl-C stops.", 1)[0]
    assert "batch-demo-ready" in banner and "names the demo batch" not in banner, banner


def test_the_hint_is_one_line_of_the_banner_for_real_imm_too(monkeypatch):
    from devtools.serve import banner
    from devtools.target import Target

    monkeypatch.setenv("WEBHOOK_SECRET", new_secret())
    monkeypatch.delenv("HTTP_AUTH", raising=False)
    real = Target(real=True, host="imm.cn-hangzhou.aliyuncs.com", port=443, protocol="https", chosen_by="IMM_REGION=x")
    text = banner("http://127.0.0.1:9000/", None, real, generated_secret=False)
    [hint] = [line for line in text.splitlines() if "names the demo batch" in line]
    assert "IMM_REGION=x" in hint and "demo-project/batch-demo-ready" in hint, text
