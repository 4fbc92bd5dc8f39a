"""`python -m emulator`: the printed endpoint works, options take effect, Ctrl-C exits 0."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from alibabacloud_imm20200930 import models as m
from alibabacloud_imm20200930.client import Client
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.models import Config

from emulator.__main__ import build_parser, configure, main, parse_progress

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(*args: str) -> tuple[subprocess.Popen, list[str]]:
    """Run the CLI and read its banner (up to the Ctrl-C line)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulator", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if "Ctrl-C" in line:
            return proc, lines
    proc.kill()
    raise AssertionError(f"no banner; stdout={lines} stderr={proc.stderr.read()}")


def interrupt(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=10)
    return proc.returncode, out


def client_for(endpoint: str, ak: str = "local-ak", secret: str = "local-secret") -> Client:
    return Client(Config(access_key_id=ak, access_key_secret=secret, endpoint=endpoint, protocol="http"))


def test_cli_serves_on_the_printed_endpoint_and_stops_cleanly_on_ctrl_c():
    port = free_port()
    proc, banner = start("--port", str(port), "--fault", "GetBatch:throttle:1:status=429")
    try:
        text = "\n".join(banner)
        assert f"http://127.0.0.1:{port}" in text
        assert f"IMM_ENDPOINT=127.0.0.1:{port} IMM_PROTOCOL=http" in text
        assert f"OSS_ENDPOINT=http://127.0.0.1:{port}" in text
        assert "ALIBABA_CLOUD_ACCESS_KEY_ID=local-ak ALIBABA_CLOUD_ACCESS_KEY_SECRET=local-secret" in text
        assert "demo-project" in text
        client = client_for(f"127.0.0.1:{port}")
        request = m.GetBatchRequest(project_name="demo-project", id="batch-demo-running")
        with pytest.raises(ClientException) as info:
            client.get_batch(request)
        assert (info.value.status_code, info.value.code) == (429, "Throttling.User")
        assert client.get_batch(request).body.batch.state == "Running"
    finally:
        code, out = interrupt(proc)
    assert code == 0
    assert "emulator stopped" in out


def test_cli_port_zero_prints_the_real_port_and_honours_keys_and_seed(tmp_path):
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"imm": {"projects": {"p1": {"batches": [{"Id": "batch-1", "State": "Failed"}]}}}}))
    proc, banner = start(
        "--port", "0", "--seed", str(seed), "--access-key-id", "cli-ak", "--access-key-secret", "cli-s"
    )
    try:
        match = re.search(r"IMM_ENDPOINT=(127\.0\.0\.1:(\d+))", "\n".join(banner))
        assert match and match.group(2) != "0"
        client = client_for(match.group(1), "cli-ak", "cli-s")
        assert client.get_batch(m.GetBatchRequest(project_name="p1", id="batch-1")).body.batch.state == "Failed"
        with pytest.raises(ClientException) as info:
            client.get_batch(m.GetBatchRequest(project_name="demo-project", id="batch-demo-ready"))
        assert info.value.code == "ResourceNotFound"
    finally:
        code, _ = interrupt(proc)
    assert code == 0


def test_configure_applies_faults_progressions_and_seed_none():
    args = build_parser().parse_args(
        [
            "--seed",
            "none",
            "--fault",
            "UpdateBatch:throttle:3",
            "--fault-rate",
            "0.25",
            "--fault-seed",
            "7",
            "--fault-kinds",
            "internal,drop",
            "--progress",
            "Running:Succeeded:after_reads=2",
        ]
    )
    emulator = configure(args)
    assert emulator.imm.projects() == []
    assert emulator.faults.pending() == 3
    assert emulator.faults.rate == 0.25
    emulator.imm.create_batch("p", id="b", state="Running")
    (progression,) = emulator.imm.progressions()
    assert (progression.state_from, progression.to, progression.after_reads) == ("Running", "Succeeded", 2)


def test_parse_progress():
    assert parse_progress("Running:Failed:after_seconds=1.5") == {
        "state_from": "Running",
        "to": "Failed",
        "after_seconds": 1.5,
    }
    for bad in ("Running:Succeeded", "Running:Succeeded:after=3", "Running:Succeeded:after_reads"):
        with pytest.raises(ValueError):
            parse_progress(bad)


@pytest.mark.parametrize(
    "argv",
    [
        ["--seed", "/nonexistent/seed.json"],
        ["--fault", "GetBatch:nonsense"],
        ["--progress", "Running:Nope:after_reads=1"],
    ],
)
def test_bad_options_exit_2(argv, capsys):
    assert main(["--port", "0", *argv]) == 2
    assert "error:" in capsys.readouterr().err


def test_port_in_use_exits_2(capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert main(["--port", str(busy.getsockname()[1]), "--seed", "none"]) == 2
    assert "cannot listen" in capsys.readouterr().err
