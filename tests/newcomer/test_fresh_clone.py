"""The README's two commands in a fresh clone, as a new user runs them: `git clone`, then `python3 dev.py ...`.

The clone is of the committed HEAD (what a user would get). It reuses the venv these tests run in, linked as the
clone's `.venv`, when that venv was installed by dev.py from the same locks (so dev.py finds nothing to install and
the test costs seconds, not a reinstall); otherwise the parts that need a venv are skipped.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(
    shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs git and a git checkout"
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _new_shell_env() -> dict[str, str]:
    """A new user's shell: none of the variables that select IMM, keys or secrets, and no venv activated."""
    drop = ("IMM_", "ALIBABA_CLOUD_", "OSS_", "RESULT_", "WEBHOOK_", "HTTP_AUTH", "VIRTUAL_ENV", "PYTHON")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("newcomer") / "imm-batch-updater"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(target)], check=True, timeout=120)
    return target


@pytest.fixture(scope="module")
def clone_with_venv(clone) -> Path:
    """The clone with `.venv` -> this test's venv, when dev.py would accept that venv as up to date."""
    venv = Path(sys.prefix)
    spec = importlib.util.spec_from_file_location("clone_dev", clone / "dev.py")
    assert spec and spec.loader
    dev = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dev)
    stamp = venv / ".requirements-sha256"
    if sys.prefix == sys.base_prefix or not stamp.exists() or stamp.read_text().strip() != dev.stamp_for(venv):
        pytest.skip("this venv was not installed by dev.py from the committed locks: a clone would reinstall")
    (clone / ".venv").symlink_to(venv, target_is_directory=True)
    return clone


def _dev(clone: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "dev.py", *args],
        cwd=clone,
        env=_new_shell_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_dev_py_help_in_a_fresh_clone(clone):
    had_venv = (clone / ".venv").exists()
    proc = _dev(clone, "--help")
    assert proc.returncode == 0, proc.stderr
    for command in ("serve", "test", "--all-pythons", "invoke", "sign", "lock"):
        assert command in proc.stdout
    assert (clone / ".venv").exists() == had_venv and "installing" not in proc.stderr  # --help installs nothing


def test_readme_commands_are_the_ones_dev_py_has(clone):
    readme = (clone / "README.md").read_text()
    top = readme.split("```bash", 1)[1].split("```", 1)[0]
    assert "python3 dev.py serve" in top and "python3 dev.py test" in top


def test_serve_in_a_fresh_clone_answers_and_stops(clone_with_venv):
    """`python3 dev.py serve` starts the emulator and the function, its banner's curl and sign commands work from a
    plain shell, a second serve on the same ports says so in one line, and SIGTERM stops it."""
    port, emulator_port = _free_port(), _free_port()
    args = ["dev.py", "serve", "--port", str(port), "--emulator-port", str(emulator_port)]
    server = subprocess.Popen(
        [sys.executable, *args],
        cwd=clone_with_venv,
        env=_new_shell_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        banner = []
        deadline = time.monotonic() + 60
        assert server.stdout is not None
        while time.monotonic() < deadline:
            line = server.stdout.readline()
            if not line:
                break
            banner.append(line.rstrip("\n"))
            if line.startswith("Ctrl-C stops"):
                break
        text = "\n".join(banner)
        url = f"http://127.0.0.1:{port}/"
        assert f"listening on {url}" in text and f"emulator at http://127.0.0.1:{emulator_port}" in text

        with urllib.request.urlopen(url + "healthz", timeout=10) as response:
            assert response.status == 200 and json.loads(response.read()) == {"status": "ok"}

        # The printed curl, replayed as curl would send it.
        [curl] = [line for line in banner if line.startswith("curl ")]
        words = shlex.split(curl)
        headers = dict(words[i + 1].split(": ", 1) for i, w in enumerate(words) if w == "-H")
        body = words[words.index("--data-binary") + 1].encode()
        request = urllib.request.Request(words[words.index("POST") + 1], data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = response.read().decode()
        assert json.loads(answer)["results"][0]["status"] == "updated"
        # The README quotes this answer ("Pasting the `curl` answers `...`"): each part it shows, in that order.
        readme = (clone_with_venv / "README.md").read_text()
        quoted = readme.split("Pasting the `curl` answers `", 1)[1].split("`", 1)[0].replace("\n", "")
        position = 0
        for part in quoted.split("…"):
            found = answer.find(part, position)
            assert found >= 0, f"README quotes {part!r}, the answer is {answer}"
            position = found + len(part)

        # "More signed requests, from another shell": export the printed secret, run the printed command.
        [export] = [line.strip() for line in banner if line.strip().startswith("export WEBHOOK_SECRET=")]
        [send] = [line.split("#", 1)[0].strip() for line in banner if "dev.py sign --send" in line]
        secret = shlex.split(export.removeprefix("export "))[0].split("=", 1)[1]
        command = shlex.split(send)
        assert command[:2] == ["python3", "dev.py"]
        sent = subprocess.run(
            [sys.executable, *command[1:]],
            cwd=clone_with_venv,
            env={**_new_shell_env(), "WEBHOOK_SECRET": secret},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert sent.returncode == 0 and "HTTP 200" in sent.stderr, sent.stderr[-500:]
        assert json.loads(sent.stdout)["results"][0]["status"] == "updated"  # stdout is exactly the answer

        # A second serve on the same ports: one line that names the port and the option, no traceback.
        second = _dev(clone_with_venv, *args[1:])
        assert second.returncode == 1 and "Traceback" not in second.stderr
        [line] = second.stderr.strip().splitlines()
        assert f"port {port}" in line and "--port" in line
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=30)
    assert server.returncode == 0, err[-1000:]
    assert out.rstrip().endswith("stopped")
    for freed in (port, emulator_port):  # nothing listens on either port any more (TIME_WAIT is allowed)
        with socket.create_server(("127.0.0.1", freed), reuse_port=False):
            pass
