#!/usr/bin/env python3
"""Developer entry point. Needs only Python 3.10+ and pip: it makes `.venv/` and installs what is missing.

    python3 dev.py serve      # run the function locally on http://127.0.0.1:9000 (bundled emulator by default)
    python3 dev.py test       # lint (ruff) and run the whole test suite
    python3 dev.py invoke EVENT_FILE   # run one trigger event through the handler (local `s local invoke`)
    python3 dev.py emulator   # only the emulator (IMM + OSS + MNS) on 127.0.0.1:9100
    python3 dev.py bench      # the benchmarks in bench/

Extra arguments are passed on (e.g. `python3 dev.py test -k webhook`).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
REQUIREMENTS = ("requirements.txt", "requirements-dev.txt")


def _requirements_hash() -> str:
    digest = hashlib.sha256()
    for name in REQUIREMENTS:
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def ensure_venv() -> None:
    """Create .venv and install the (pinned) requirements when they changed since the last install."""
    stamp = VENV / ".requirements-sha256"
    wanted = _requirements_hash()
    if PY.exists() and stamp.exists() and stamp.read_text().strip() == wanted:
        return
    if not PY.exists():
        print("creating .venv ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    print("installing requirements-dev.txt into .venv ...", flush=True)
    pip = [str(PY), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "-r", str(ROOT / "requirements-dev.txt")], check=True, cwd=ROOT)
    stamp.write_text(wanted)


def run(args: list[str]) -> int:
    return subprocess.run([str(PY), *args], cwd=ROOT).returncode


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    ensure_venv()
    if command == "serve":
        return run(["-m", "devtools.serve", *rest])
    if command == "emulator":
        return run(["-m", "emulator", *rest])
    if command == "invoke":
        return run(["-m", "devtools.invoke", *rest])
    if command == "bench":
        return run(["-m", "bench", *rest])
    if command == "test":
        lint = run(["-m", "ruff", "check", "."])
        if lint != 0:
            return lint
        return run(["-m", "pytest", *rest])
    print(f"unknown command {command!r}\n{__doc__}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
