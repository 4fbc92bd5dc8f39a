#!/usr/bin/env python3
"""Developer entry point. Needs only Python 3.10+ and pip: it makes `.venv/` and installs the locked requirements
the first time (and again whenever a requirements file changes).

    python3 dev.py serve [--port 9000] [--emulator-port 9100]
                                     # the function on http://127.0.0.1:9000 (the bundled emulator, or real IMM
                                     # when IMM_REGION or IMM_ENDPOINT and keys are set)
    python3 dev.py test [ARGS]       # ruff, mypy (when pyproject.toml configures it), then pytest on this Python
    python3 dev.py test --all-pythons [ARGS]
                                     # the same, then pytest again on Python 3.10 (FC's runtime) and 3.12 when
                                     # they are installed (pyenv or pythonX.Y on PATH), with a tenth of the
                                     # generated examples (HYPOTHESIS_PROFILE=compat): what CI runs
    python3 dev.py invoke EVENT_FILE # run one trigger event through the handler (the local `s local invoke`)
    python3 dev.py sign FILE         # print a Standard Webhooks-signed curl for FILE (export WEBHOOK_SECRET first)
    python3 dev.py emulator          # only the emulator (IMM + OSS + MNS) on 127.0.0.1:9100
    python3 dev.py bench             # the benchmarks in bench/
    python3 dev.py pump [--queue Q]  # deliver the work queue (WORK_QUEUE) back to the handler, as its EventBridge
                                     # trigger does (the emulator's MNS by default; --once stops when it is empty)
    python3 dev.py revert RESULTS    # the documents that undo a change, from its results or outcome log lines
    python3 dev.py lock [--check]    # compile requirements.txt and requirements-dev.txt from the .in files (uv);
                                     # --check: fail when they are stale, then run deploy/build.py on Python
                                     # 3.10 (the lock alone, `pip check`, its byte code used at import)

Extra arguments are passed on (e.g. `python3 dev.py test -k webhook`, `python3 dev.py serve --port 9001`).
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
LOCKS = ("requirements.txt", "requirements-dev.txt")
# The Pythons CI runs the suite on besides the default one: FC's python3.10 runtime (where the function is deployed)
# and the newest Python FC offers.
MATRIX = ("3.10", "3.12")
RUNTIME_PYTHON = "3.10"
RUNTIME_PLATFORM = "x86_64-unknown-linux-gnu"
LOCK_COMMAND = "python3 dev.py lock"
PYPI = "https://pypi.org/simple"
KEEP = {"pip", "setuptools", "wheel"}  # what a new venv has besides the lock


def say(message: str) -> None:
    """Progress goes to stderr: stdout belongs to the command (`python3 dev.py sign FILE | sh` must work)."""
    print(message, file=sys.stderr, flush=True)


# -- virtual environments ------------------------------------------------------------------------------------------
def venv_for(version: str | None) -> Path:
    return VENV if version is None else ROOT / f".venv-py{version}"


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def venv_version(venv: Path) -> str:
    """The Python version the venv was made with (from pyvenv.cfg), '' when there is no usable venv."""
    try:
        cfg = (venv / "pyvenv.cfg").read_text()
    except OSError:
        return ""
    found = re.search(r"^(?:version|version_info)\s*=\s*(\S+)", cfg, re.M)
    return found.group(1) if found and venv_python(venv).exists() else ""


def stamp_for(venv: Path) -> str:
    """What the venv must have been installed from: the locks' bytes and the venv's Python version."""
    digest = hashlib.sha256(venv_version(venv).encode())
    for name in LOCKS:
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_pins(path: Path) -> dict[str, str]:
    """{canonical name: version} of every `name==version` line of a compiled requirements file (markers ignored)."""
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        found = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;]+)", line)
        if found:
            pins[_canonical(found.group(1))] = found.group(2)
    return pins


def ensure_venv(base_python: str = sys.executable, version: str | None = None) -> Path:
    """The venv's python, with exactly requirements-dev.txt installed (created or brought up to date as needed)."""
    venv = venv_for(version)
    py = venv_python(venv)
    stamp = venv / ".requirements-sha256"
    if venv_version(venv) and stamp.exists() and stamp.read_text().strip() == stamp_for(venv):
        return py
    if not venv_version(venv):
        say(f"creating {venv.name} ({base_python}) ...")
        subprocess.run([base_python, "-m", "venv", "--clear", str(venv)], check=True)
    say(f"installing requirements-dev.txt into {venv.name} ...")
    pip = [str(py), "-m", "pip", "--disable-pip-version-check"]
    # --no-deps: the lock is complete, so nothing outside it may come in; `pip check` below proves it is closed.
    subprocess.run(
        [*pip, "install", "-qq", "--no-deps", "--use-pep517", "-r", str(ROOT / "requirements-dev.txt")],
        check=True,
        cwd=ROOT,
    )
    listed = subprocess.run([*pip, "list", "--format=json"], check=True, capture_output=True, text=True).stdout
    wanted = set(lock_pins(ROOT / "requirements-dev.txt")) | KEEP
    extra = sorted(d["name"] for d in json.loads(listed) if _canonical(d["name"]) not in wanted)
    if extra:  # left over from an older lock: the venv holds exactly what is locked
        say(f"removing what the lock no longer holds: {' '.join(extra)}")
        subprocess.run([*pip, "uninstall", "-q", "-y", *extra], check=True)
    checked = subprocess.run([*pip, "check"], capture_output=True, text=True)
    if checked.returncode:
        raise SystemExit(f"{venv.name}: the installed lock is not consistent (pip check):\n{checked.stdout}")
    stamp.write_text(stamp_for(venv))
    return py


def find_python(version: str) -> str | None:
    """An interpreter for `version` (e.g. "3.10"): pyenv's newest $(pyenv root)/versions/X.Y.*, else pythonX.Y."""
    roots = [os.environ.get("PYENV_ROOT", ""), str(Path.home() / ".pyenv")]
    if shutil.which("pyenv"):
        try:
            roots.insert(0, subprocess.run(["pyenv", "root"], capture_output=True, text=True, timeout=10).stdout)
        except (OSError, subprocess.SubprocessError):
            pass
    candidates: list[str] = []
    for root in filter(None, (r.strip() for r in roots)):
        found = glob.glob(os.path.join(root, "versions", f"{version}.*", "bin", "python3"))
        found = [f for f in found if re.fullmatch(rf"{re.escape(version)}\.\d+", Path(f).parents[1].name)]
        candidates += sorted(found, key=lambda f: int(Path(f).parents[1].name.rsplit(".", 1)[1]), reverse=True)
    on_path = shutil.which(f"python{version}")
    if on_path:
        candidates.append(on_path)
    for candidate in candidates:
        try:
            out = subprocess.run(
                [candidate, "-c", "import sys, venv; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=30,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            continue
        if out == version:
            return candidate
    return None


# -- commands ------------------------------------------------------------------------------------------------------
def run(py: Path, args: list[str], env: dict[str, str] | None = None) -> int:
    return subprocess.run([str(py), *args], cwd=ROOT, env={**os.environ, **env} if env else None).returncode


def replace_with(py: Path, args: list[str]) -> int:
    """Become `py args` (a server then gets Ctrl-C and SIGTERM itself, and no wrapper is left behind)."""
    os.chdir(ROOT)
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "nt":  # no exec semantics worth having on Windows
        return subprocess.run([str(py), *args]).returncode
    os.execv(str(py), [str(py), *args])  # noqa: S606  (a fixed program: the venv's python)
    return 0  # not reached


def mypy_args() -> list[str] | None:
    """mypy's arguments when pyproject.toml has a [tool.mypy] section (its `files`, else the deployed code)."""
    text = (ROOT / "pyproject.toml").read_text()
    section = re.search(r"^\[tool\.mypy\][ \t]*\n(.*?)(?=^\[|\Z)", text, re.M | re.S)
    if section is None:
        return None
    return [] if re.search(r"^files\s*=", section.group(1), re.M) else ["handler.py", "imm_batch_updater"]


def lint(py: Path) -> int:
    say("== ruff")
    code = run(py, ["-m", "ruff", "check", "."])
    if code:
        return code
    args = mypy_args()
    if args is None:
        say("== mypy: skipped (no [tool.mypy] in pyproject.toml)")
        return 0
    say("== mypy")
    return run(py, ["-m", "mypy", *args])


def version_of(py: Path) -> str:
    out = subprocess.run([str(py), "-c", "import platform; print(platform.python_version())"], capture_output=True)
    return out.stdout.decode().strip()


def test(args: list[str]) -> int:
    all_pythons = "--all-pythons" in args
    args = [a for a in args if a != "--all-pythons"]
    started = time.monotonic()
    py = ensure_venv()
    default_version = version_of(py)
    code = lint(py)
    if code:
        say("lint failed: no tests were run")
        return code
    say(f"== pytest on Python {default_version} ({VENV.name})")
    code = run(py, ["-m", "pytest", *args])
    steps = "ruff, pytest" if mypy_args() is None else "ruff, mypy, pytest"
    report = [f"ran    {default_version:8} {VENV.name:14} {steps}: {'passed' if code == 0 else 'FAILED'}"]
    if all_pythons:
        # The other interpreters' passes run every test with a tenth of the generated examples (tests/conftest.py:
        # the default profile is derandomized, so they would draw the same examples again), unless one is chosen.
        profile = os.environ.get("HYPOTHESIS_PROFILE", "compat")
        for version in MATRIX:
            if ".".join(default_version.split(".")[:2]) == version:
                report.append(f"ran    {version:8} {'':14} (the default interpreter above)")
                continue
            base = find_python(version)
            if base is None:
                report.append(
                    f"SKIPPED {version:7} {'':14} not installed (no $(pyenv root)/versions/{version}.*, "
                    f"no python{version} on PATH)"
                )
                continue
            vpy = ensure_venv(base, version)
            full = version_of(vpy)
            say(f"== pytest on Python {full} ({venv_for(version).name}, hypothesis profile {profile})")
            result = run(vpy, ["-m", "pytest", *args], env={"HYPOTHESIS_PROFILE": profile})
            outcome = "passed" if result == 0 else "FAILED"
            report.append(f"ran    {full:8} {venv_for(version).name:14} pytest: {outcome}")
            code = code or result
    if all_pythons or code:
        say(f"\n== interpreters ({time.monotonic() - started:.0f} s)")
        for line in report:
            say(line)
    return code


SOURCES = (  # (source, lock, uv options): the runtime lock first, the dev lock is constrained by it
    (
        "requirements.in",
        "requirements.txt",
        ("--python-version", RUNTIME_PYTHON, "--python-platform", RUNTIME_PLATFORM),
    ),
    ("requirements-dev.in", "requirements-dev.txt", ("--universal", "--python-version", RUNTIME_PYTHON)),
)


def compile_locks(py: Path, directory: Path) -> bool:
    """Compile the locks in `directory` with uv (an existing lock's pins are the preferred versions)."""
    # uv reads no pip.conf: unless UV_DEFAULT_INDEX / UV_INDEX_URL say otherwise, the locks resolve against PyPI, and
    # --no-config keeps a machine's uv.toml out of it.
    index = [] if os.environ.get("UV_DEFAULT_INDEX") or os.environ.get("UV_INDEX_URL") else ["--default-index", PYPI]
    for source, lock_name, options in SOURCES:
        command = [str(py), "-m", "uv", "pip", "compile", "--quiet", "--no-config", *index]
        command += ["--custom-compile-command", LOCK_COMMAND, source, "-o", lock_name, *options]
        if subprocess.run(command, cwd=directory).returncode:
            say(f"uv could not compile {lock_name} from {source} (see above)")
            return False
    return True


def lock_bytes(directory: Path) -> list[bytes | None]:
    """The locks' bytes (None for one that does not exist yet), to say whether compiling changed them."""
    return [(directory / name).read_bytes() if (directory / name).exists() else None for _, name, _ in SOURCES]


def lock(args: list[str]) -> int:
    py = ensure_venv()
    if "--check" not in args:
        say(f"compiling requirements.txt (CPython {RUNTIME_PYTHON}, {RUNTIME_PLATFORM}) and requirements-dev.txt ...")
        before = lock_bytes(ROOT)
        if not compile_locks(py, ROOT):
            return 1
        if lock_bytes(ROOT) == before:
            say("done: the locks are unchanged")
        else:
            say("done: commit requirements.in, requirements.txt, requirements-dev.in and requirements-dev.txt")
        return 0
    # Stale = compiling again, with the current pins as the preferred versions, changes a pin. A new release of a
    # transitive dependency changes nothing (the current pin is still preferred); an edited .in file does.
    stale = []
    with tempfile.TemporaryDirectory() as tmp:
        for source, lock_name, _ in SOURCES:
            shutil.copyfile(ROOT / source, Path(tmp) / source)
            shutil.copyfile(ROOT / lock_name, Path(tmp) / lock_name)
        if not compile_locks(py, Path(tmp)):
            say(f"the locks are stale or the .in files conflict: fix them and run `{LOCK_COMMAND}`")
            return 1
        for source, lock_name, _ in SOURCES:
            before, after = lock_pins(ROOT / lock_name), lock_pins(Path(tmp) / lock_name)
            changes = [
                f"  {name}: {before.get(name, '-')} -> {after.get(name, '-')}"
                for name in sorted(set(before) | set(after))
                if before.get(name) != after.get(name)
            ]
            if changes:
                stale.append(f"{lock_name} is stale against {source}:\n" + "\n".join(changes))
    if stale:
        say("\n".join(stale) + f"\nrun `{LOCK_COMMAND}` and commit the result")
        return 1
    say("the locks are up to date with requirements.in and requirements-dev.in")
    return runtime_lock_installs_alone()


def runtime_lock_installs_alone() -> int:
    """The code package's build (deploy/build.py) on FC's runtime Python, in a copy of the function: it installs
    the lock alone (`--no-deps`) and `pip check` passes on it; then a fresh interpreter importing the function and
    the IMM SDK from the built package (without writing byte code, like the read-only /code, and with every source's
    modification time moved, as fc3's zip does) compiles nothing."""
    from deploy.build import compiled_at_import, copy_function  # standard library only, like this file

    base = find_python(RUNTIME_PYTHON)
    if base is None:
        say(f"SKIPPED the runtime build on Python {RUNTIME_PYTHON}: not installed")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        venv, code = Path(tmp) / "venv", Path(tmp) / "code"
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
        py = venv_python(venv)
        code.mkdir()
        copy_function(code)
        for name in ("requirements.txt", "deploy/build.py"):
            (code / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, code / name)
        env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        subprocess.run([str(py), "deploy/build.py", "-qq"], cwd=code, env=env, check=True)
        env["PYTHONPATH"] = str(code / "python")  # as PYTHONPATH=/code/python in s.yaml
        if subprocess.run([str(py), "-m", "pip", "check"], env=env).returncode:
            say(f"requirements.txt does not install on its own on Python {RUNTIME_PYTHON} (pip check above)")
            return 1
        for source in code.rglob("*.py"):  # fc3's zip dates every file 2023-11-01: checked-hash byte code stays
            os.utime(source, (1698796800, 1698796800))  # 2023-11-01 00:00 UTC
        compiled = compiled_at_import(str(py), code, ("alibabacloud_imm20200930.client",), env)
        if compiled:
            say(
                f"the built package's byte code is not used on Python {RUNTIME_PYTHON}; compiled at import:\n  "
                + "\n  ".join(compiled[:20])
            )
            return 1
    say(
        f"deploy/build.py on Python {RUNTIME_PYTHON}: the lock installs alone (--no-deps) and passes pip check, and "
        "the built package imports without compiling anything"
    )
    return 0


MODULES = {
    "serve": "devtools.serve",
    "emulator": "emulator",
    "invoke": "devtools.invoke",
    "sign": "devtools.sign",
    "bench": "bench",
    "pump": "devtools.pump",
    "revert": "devtools.revert",
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "test":
        return test(rest)
    if command == "lock":
        return lock(rest)
    if command in MODULES:
        return replace_with(ensure_venv(), ["-m", MODULES[command], *rest])
    print(f"unknown command {command!r}\n{__doc__}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
