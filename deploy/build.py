"""The code package's build, for FC's python3.10 runtime: the locked dependencies into ./python, and byte code for
every module the package ships, dependencies and our own alike.

    s build --command 'python3 deploy/build.py'     # in FC's python3.10 build image (Docker), code at /code
    python3.10 deploy/build.py                       # or on Linux x86_64 with CPython 3.10, without Docker
    python3.10 deploy/build.py --function-only       # our own modules only (the code changed, the lock did not)
    python3.10 deploy/build.py -i https://mirrors.aliyun.com/pypi/simple/   # further arguments go to pip

Why: FC's `/code` is read-only, so Python cannot write byte code there, and a module shipped without its `.pyc` is
compiled again on every cold start (about 0.5 s for the dependencies, about 25 ms for our own modules:
docs/deploy.md, 4). All of it is *checked-hash* byte code (PEP 552), validated against a hash of its source rather
than the source's modification time, which fc3's zip sets to 2023-11-01 for every file: byte code left from an older
source is simply not used (compiled again, never a wrong result). `.fcignore` keeps the `cpython-310` byte code
only.

Standard library only: this runs in the build image before any dependency is installed. fc3 runs `--command` in
the runtime's build image with the code directory mounted at /code (devsapp/fc3,
`src/subCommands/build/impl/defaultBuilder.ts`).
"""

from __future__ import annotations

import compileall
import json
import os
import py_compile
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = (3, 10)  # FC's python3.10 runtime: byte code is per interpreter version (`cpython-310`)
FUNCTION = ("handler.py", "imm_batch_updater")  # what the code package holds of our own (.fcignore)
SOURCE_DATE_EPOCH = "315532800"  # any fixed value: with it set, pip writes checked-hash byte code (py_compile)


def compile_function(root: Path = ROOT) -> int:
    """Checked-hash byte code for our own modules under `root`, with this interpreter; stale caches removed first.
    Returns the number of source files compiled; raises RuntimeError when one does not compile."""
    for cache in [root / "__pycache__", *(root / FUNCTION[1]).rglob("__pycache__")]:
        shutil.rmtree(cache, ignore_errors=True)
    mode = py_compile.PycInvalidationMode.CHECKED_HASH
    ok = compileall.compile_file(str(root / FUNCTION[0]), quiet=1, force=True, invalidation_mode=mode)
    ok = compileall.compile_dir(str(root / FUNCTION[1]), quiet=1, force=True, invalidation_mode=mode) and ok
    if not ok:
        raise RuntimeError("a module of the function could not be compiled, or its byte code written (see above)")
    return 1 + sum(1 for _ in (root / FUNCTION[1]).rglob("*.py"))


def copy_function(into: Path, root: Path = ROOT) -> Path:
    """The function's own files under `into`, as the code package holds them, without any byte code (tests and the
    cold-start benchmark lay the function out this way)."""
    shutil.copy2(root / FUNCTION[0], into / FUNCTION[0])
    shutil.copytree(root / FUNCTION[1], into / FUNCTION[1], ignore=shutil.ignore_patterns("__pycache__"))
    return into


# Run in a built code package: import handler, every module of ours (and `extra` modules), and print the files under
# the package the interpreter compiled (the `compile` audit event importlib's source_to_code raises): none, when the
# build's byte code is used.
_PROBE = """
import importlib, json, pkgutil, sys
compiled = []
sys.addaudithook(lambda event, args: event == "compile" and compiled.append(str(args[1])))
import handler, imm_batch_updater
for name in sys.argv[2:]:
    importlib.import_module(name)
for module in pkgutil.walk_packages(imm_batch_updater.__path__, "imm_batch_updater."):
    importlib.import_module(module.name)
print(json.dumps(sorted({c for c in compiled if c.startswith(sys.argv[1])})))
"""


def compiled_at_import(
    python: str, root: Path, extra: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> list[str]:
    """The sources under `root` that a fresh `python` compiles when importing the function from it, as a cold start
    in FC does: it may not write byte code there (PYTHONDONTWRITEBYTECODE, like the read-only /code), only read it.
    An empty list: every module came from the build's byte code. Raises CalledProcessError if an import fails."""
    env = {k: v for k, v in (os.environ if env is None else env).items() if k != "PYTHONPYCACHEPREFIX"}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    command = [python, "-c", _PROBE, str(root), *extra]
    out = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, check=True).stdout  # noqa: S603
    return list(json.loads(out.splitlines()[-1]))


def install_dependencies(pip_args: list[str], root: Path = ROOT) -> None:
    """`pip install --no-deps --use-pep517 -t python -r requirements.txt --upgrade` into an empty ./python: exactly
    the lock, with checked-hash byte code (SOURCE_DATE_EPOCH). An earlier build's ./python is removed first: `pip
    install -t` only replaces what it installs again, so a package since dropped from the lock stayed (importable,
    and shipped), and so did the .dist-info of a version since replaced (importlib.metadata then reported the old
    version)."""
    if (root / "python").exists():
        shutil.rmtree(root / "python")
    env = {**os.environ, "SOURCE_DATE_EPOCH": os.environ.get("SOURCE_DATE_EPOCH") or SOURCE_DATE_EPOCH}
    # --use-pep517: a package published as an sdist only (alibabacloud-tea) is built into a wheel in an isolated
    # environment and installed like every other wheel, byte code included. Without it, an interpreter without the
    # `wheel` package (a plain pyenv or build image Python) installs it with the legacy `setup.py install`, which
    # writes no byte code under -t, and that package was compiled again at every cold start.
    command = [sys.executable, "-m", "pip", "install", "--no-deps", "--use-pep517", "-t", "python"]
    command += ["-r", "requirements.txt"]
    subprocess.run([*command, "--upgrade", *pip_args], cwd=root, env=env, check=True)  # noqa: S603 (our argv)


def main(argv: list[str]) -> int:
    if "-h" in argv or "--help" in argv:  # not pip's help: pip would run after ./python was removed
        print(__doc__)
        return 0
    if sys.implementation.name != "cpython" or sys.version_info[:2] != RUNTIME:
        found = f"{sys.implementation.name} " + ".".join(map(str, sys.version_info[:3]))
        print(
            f"deploy/build.py needs CPython 3.10 (FC's python3.10 runtime), not {found}: run it with python3.10, "
            "or in the build image with `s build --command 'python3 deploy/build.py'`",
            file=sys.stderr,
        )
        return 2
    function_only = "--function-only" in argv
    try:
        if not function_only:
            install_dependencies([a for a in argv if a != "--function-only"])
        count = compile_function()
    except subprocess.CalledProcessError as e:  # pip said why above
        print(f"deploy/build.py: pip failed (exit status {e.returncode}); ./python is not usable", file=sys.stderr)
        return 1
    except RuntimeError as e:  # compileall said which module above
        print(f"deploy/build.py: {e}", file=sys.stderr)
        return 1
    print(
        f"compiled {count} modules of the function (checked-hash, cpython-310)"
        + ("" if function_only else "; the dependencies are in ./python")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
