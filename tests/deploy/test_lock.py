"""The dependency locks: requirements.txt is what `s build` (deploy/build.py) installs into the function (CPython
3.10, Linux x86_64), compiled from requirements.in by `python3 dev.py lock`; requirements-dev.txt adds the tools on
top of the same pins.

These checks need no network. `python3 dev.py lock --check` (in CI) also compiles the locks again against PyPI and
runs deploy/build.py on Python 3.10: requirements.txt installed alone passes `pip check`.
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)(?:\s*;\s*(.+))?")
# FC's python3.10 runtime, as markers see it.
FC_PYTHON310 = {
    **default_environment(),
    "implementation_name": "cpython",
    "implementation_version": "3.10.13",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "platform_python_implementation": "CPython",
    "platform_system": "Linux",
    "python_full_version": "3.10.13",
    "python_version": "3.10",
    "sys_platform": "linux",
    "extra": "",
}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_lines(path: Path) -> list[str]:
    lines = []
    for raw in path.read_text().splitlines():
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if line:
            lines.append(line)
    return lines


def pins(path: Path) -> dict[str, tuple[str, str | None]]:
    """{canonical name: (version, marker or None)} of a file whose every requirement is `name==version[; marker]`."""
    found: dict[str, tuple[str, str | None]] = {}
    for line in requirement_lines(path):
        if line.startswith("-"):
            continue
        match = PIN.fullmatch(line)
        assert match, f"{path.name}: not an exact pin: {line!r}"
        found[canonical(match.group(1))] = (match.group(2), match.group(3))
    return found


@pytest.fixture(scope="module")
def runtime_lock() -> dict[str, str]:
    locked = pins(ROOT / "requirements.txt")
    assert all(marker is None for _, marker in locked.values()), "the runtime lock is for one platform: no markers"
    return {name: version for name, (version, _) in locked.items()}


def test_requirements_in_holds_only_exact_pins():
    assert [line for line in requirement_lines(ROOT / "requirements.in") if line.startswith("-")] == []
    assert pins(ROOT / "requirements.in")  # every line is name==version (checked by pins)


def test_every_direct_pin_is_in_the_lock_unchanged(runtime_lock):
    """The cheap staleness check: a pin edited in requirements.in without `python3 dev.py lock` fails here."""
    for name, (version, _) in pins(ROOT / "requirements.in").items():
        assert runtime_lock.get(name) == version, (
            f"requirements.in pins {name}=={version} but requirements.txt has {runtime_lock.get(name)}: "
            "run `python3 dev.py lock`"
        )
    assert len(runtime_lock) > len(pins(ROOT / "requirements.in")), "the transitive dependencies are pinned too"
    assert "python3 dev.py lock" in (ROOT / "requirements.txt").read_text()  # the header names the command


@pytest.mark.parametrize("name", ["requirements.txt", "requirements-dev.txt"])
def test_locks_point_at_no_index_path_or_url(name):
    """The lock installs from whatever index pip is configured with (PyPI by default), never from a machine's paths."""
    for line in requirement_lines(ROOT / name):
        assert not line.startswith(("-e", "--index-url", "--extra-index-url", "--find-links", "-f ", "-i ")), line
        assert "file:" not in line and "://" not in line and " @ " not in line and "/" not in line.split(";")[0], line


def test_the_runtime_lock_is_closed_for_python310_on_linux(runtime_lock):
    """Every requirement of every locked distribution that applies on FC's python3.10 (markers evaluated for
    CPython 3.10 on Linux x86_64) is locked too, at a version it accepts: `pip install --no-deps -r requirements.txt`
    leaves nothing missing. The metadata comes from the same versions installed here (requirements-dev.txt holds
    them); a distribution this Python does not install (a backport for < 3.11) is read when it is installed."""
    problems = []
    checked = 0
    for name, version in sorted(runtime_lock.items()):
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue
        assert dist.version == version, f"{name}: installed {dist.version}, locked {version} (run python3 dev.py)"
        checked += 1
        for spec in dist.requires or []:
            req = Requirement(spec)
            if req.marker is not None and not req.marker.evaluate(FC_PYTHON310):
                continue
            locked = runtime_lock.get(canonical(req.name))
            if locked is None:
                problems.append(f"{name} needs {req} (not locked)")
            elif not req.specifier.contains(locked, prereleases=True):
                problems.append(f"{name} needs {req}, locked {locked}")
    assert checked >= len(runtime_lock) - 3, "most of the lock is installed here"
    assert not problems, problems


def test_the_dev_lock_builds_on_the_runtime_lock(runtime_lock):
    """requirements-dev.txt is compiled with requirements.txt as constraints: the tests run the deployed versions."""
    assert "-c requirements.txt" in requirement_lines(ROOT / "requirements-dev.in")
    assert "-r requirements.in" in requirement_lines(ROOT / "requirements-dev.in")
    dev = pins(ROOT / "requirements-dev.txt")
    for name, version in runtime_lock.items():
        assert name in dev and dev[name][0] == version, f"{name}: runtime {version}, dev {dev.get(name)}"
    for tool in ("pytest", "ruff", "mypy", "uv"):
        assert tool in dev, tool


def test_dev_py_lock_makes_locks_that_do_not_exist_yet(tmp_path, monkeypatch, capsys):
    """`python3 dev.py lock` compiles the locks from the .in files: a lock that is not there yet (a new project, or
    one deleted to start again) is made, not a FileNotFoundError from reading it to say whether it changed."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("dev_under_test", ROOT / "dev.py")
    assert spec is not None and spec.loader is not None
    dev = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dev)
    for source, _, _ in dev.SOURCES:
        (tmp_path / source).write_text((ROOT / source).read_text())

    def compile_locks(py: Path, directory: Path) -> bool:
        for _, lock_name, _ in dev.SOURCES:
            (directory / lock_name).write_text("# compiled\n")
        return True

    monkeypatch.setattr(dev, "ROOT", tmp_path)
    monkeypatch.setattr(dev, "ensure_venv", lambda *a, **k: Path("python"))
    monkeypatch.setattr(dev, "compile_locks", compile_locks)
    assert dev.lock([]) == 0
    assert "commit requirements.in" in capsys.readouterr().err
    assert dev.lock([]) == 0  # compiled again, nothing changed
    assert "the locks are unchanged" in capsys.readouterr().err
