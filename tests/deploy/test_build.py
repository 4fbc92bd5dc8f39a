"""deploy/build.py: the byte code it writes for our own modules is what Python then uses, so a cold start in FC
(read-only /code) compiles none of them."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

import pytest

from deploy import build
from tests.deploy.ignore_walk import packaged_files

ROOT = Path(__file__).resolve().parents[2]


def function_copy(tmp_path: Path) -> Path:
    root = tmp_path / "code"
    root.mkdir()
    return build.copy_function(root)


def compiled_at_import(root: Path) -> list[str]:
    return build.compiled_at_import(sys.executable, root)


def test_without_the_build_every_module_is_compiled_at_each_cold_start(tmp_path):
    root = function_copy(tmp_path)
    compiled = compiled_at_import(root)
    assert str(root / "handler.py") in compiled
    assert str(root / "imm_batch_updater" / "app.py") in compiled
    assert len(compiled) == 1 + len(list((root / "imm_batch_updater").rglob("*.py")))


def test_after_the_build_no_module_of_the_function_is_compiled(tmp_path):
    root = function_copy(tmp_path)
    count = build.compile_function(root)
    assert count == 1 + len(list((root / "imm_batch_updater").rglob("*.py")))
    assert compiled_at_import(root) == []


def test_the_byte_code_is_checked_hash_so_a_moved_modification_time_keeps_it(tmp_path):
    """fc3's zip dates every file 2023-11-01: timestamp byte code would be compiled again at every cold start."""
    root = function_copy(tmp_path)
    build.compile_function(root)
    for source in [root / "handler.py", *(root / "imm_batch_updater").rglob("*.py")]:
        cached = Path(importlib.util.cache_from_source(str(source)))
        flags = int.from_bytes(cached.read_bytes()[4:8], "little")
        assert flags == 0b11, cached  # PEP 552: hash-based, checked against the source
        os.utime(source, (1_000_000_000, 1_000_000_000))
    assert compiled_at_import(root) == []


def test_byte_code_of_an_older_source_is_not_used(tmp_path):
    root = function_copy(tmp_path)
    build.compile_function(root)
    changed = root / "imm_batch_updater" / "pipeline.py"
    changed.write_text(changed.read_text() + "\n# changed after the build\n")
    assert compiled_at_import(root) == [str(changed)]


def test_the_build_removes_stale_caches_first(tmp_path):
    root = function_copy(tmp_path)
    stale = root / "imm_batch_updater" / "__pycache__" / "gone.cpython-310.pyc"
    stale.parent.mkdir()
    stale.write_bytes(b"stale")
    build.compile_function(root)
    assert not stale.exists()


@pytest.mark.skipif(sys.version_info[:2] != (3, 10), reason="the code package carries python3.10 byte code only")
def test_on_python310_the_package_keeps_what_the_build_wrote(tmp_path):
    root = function_copy(tmp_path)
    shutil.copy2(ROOT / ".fcignore", root / ".fcignore")
    build.compile_function(root)
    packaged = set(packaged_files(root))
    written = {p.relative_to(root).as_posix() for p in root.rglob("*.pyc")}
    assert written and written <= packaged


def test_the_build_refuses_another_python_than_the_runtime(capsys, monkeypatch):
    monkeypatch.setattr(build, "RUNTIME", (2, 7))
    assert build.main(["--function-only"]) == 2
    assert "needs CPython 3.10" in capsys.readouterr().err


def test_the_dependencies_are_installed_into_an_empty_python_folder(tmp_path, monkeypatch):
    """`pip install -t python --upgrade` replaces only what it installs again: a package dropped from the lock since
    the last build, or the .dist-info of a version since replaced, would stay in ./python and be deployed."""
    root = tmp_path / "code"
    for name in ("python/oldpkg/__init__.py", "python/six-1.16.0.dist-info/METADATA", "python/six.py"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("")
    calls = []

    def pip(command, cwd, env, check):  # what pip -t leaves: the lock's files, next to whatever was there
        calls.append(command)
        for name in ("python/six.py", "python/six-1.17.0.dist-info/METADATA"):
            (cwd / name).parent.mkdir(parents=True, exist_ok=True)
            (cwd / name).write_text("")

    monkeypatch.setattr(build.subprocess, "run", pip)
    build.install_dependencies(["-i", "https://mirror.example/simple/"], root)
    assert calls and calls[0][-2:] == ["-i", "https://mirror.example/simple/"]
    left = sorted(p.relative_to(root).as_posix() for p in (root / "python").rglob("*") if p.is_file())
    assert left == ["python/six-1.17.0.dist-info/METADATA", "python/six.py"]


def test_the_first_build_has_no_python_folder_to_remove(tmp_path, monkeypatch):
    monkeypatch.setattr(build.subprocess, "run", lambda command, cwd, env, check: None)
    build.install_dependencies([], tmp_path)


def test_the_build_refuses_another_implementation_than_cpython(capsys, monkeypatch):
    monkeypatch.setattr(build, "RUNTIME", sys.version_info[:2])
    monkeypatch.setattr(build.sys, "implementation", type("Impl", (), {"name": "pypy"})())
    assert build.main(["--function-only"]) == 2
    assert "needs CPython 3.10" in capsys.readouterr().err


def test_a_failing_pip_is_one_line_and_exit_status_1(capsys, monkeypatch):
    def pip_fails(command, cwd, env, check):
        raise build.subprocess.CalledProcessError(1, command)

    monkeypatch.setattr(build, "RUNTIME", sys.version_info[:2])
    monkeypatch.setattr(build, "install_dependencies", lambda args: pip_fails(["pip"], None, None, True))
    assert build.main([]) == 1
    assert capsys.readouterr().err == "deploy/build.py: pip failed (exit status 1); ./python is not usable\n"


def test_a_module_that_does_not_compile_is_one_line_and_exit_status_1(tmp_path, capsys, monkeypatch):
    root = function_copy(tmp_path)
    (root / "imm_batch_updater" / "broken.py").write_text("def broken(:\n")
    monkeypatch.setattr(build, "RUNTIME", sys.version_info[:2])
    monkeypatch.setattr(build, "ROOT", root)
    monkeypatch.setattr(build.compile_function, "__defaults__", (root,))
    assert build.main(["--function-only"]) == 1
    out = capsys.readouterr()
    assert "broken.py" in out.out + out.err
    assert out.err.endswith(
        "deploy/build.py: a module of the function could not be compiled, or its byte code written (see above)\n"
    )


def test_help_prints_the_usage_and_builds_nothing(capsys, monkeypatch):
    """`--help` is not passed on to pip: the build would remove ./python first, then only print pip's help."""
    monkeypatch.setattr(build, "RUNTIME", sys.version_info[:2])
    monkeypatch.setattr(build, "install_dependencies", lambda args: pytest.fail(f"pip ran: {args}"))
    monkeypatch.setattr(build, "compile_function", lambda: pytest.fail("compiled"))
    for flag in ("-h", "--help"):
        assert build.main([flag]) == 0
        assert "--function-only" in capsys.readouterr().out
