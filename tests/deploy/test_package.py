"""What `s deploy` packages: s.yaml's `code` filtered by .fcignore, with the fc3 component's own walking rules."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.deploy.ignore_walk import Rule, packaged_files, unsupported

ROOT = Path(__file__).resolve().parents[2]
NEVER_DEPLOYED = ("tests", "bench", "emulator", "devtools", "examples", "docs", "deploy", ".venv", ".git", ".ci")


def code_dir() -> Path:
    props = yaml.safe_load((ROOT / "s.yaml").read_text())["resources"]["imm_batch_updater"]["props"]
    return (ROOT / props["code"]).resolve()


@pytest.fixture(scope="module")
def packaged() -> list[str]:
    return packaged_files(code_dir())


def test_code_is_the_repository_root_with_its_fcignore():
    assert code_dir() == ROOT
    assert (ROOT / ".fcignore").is_file()


def test_the_package_holds_the_function(packaged):
    assert "handler.py" in packaged
    assert "requirements.txt" in packaged
    assert "schema/update-request.schema.json" in packaged
    source = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "imm_batch_updater").rglob("*.py"))
    assert source and set(source) <= set(packaged)
    assert "imm_batch_updater/sinks/mns_topic.py" in packaged


def assert_only_the_function(packaged: list[str]) -> None:
    for path in packaged:
        top = path.split("/", 1)[0]
        assert top not in NEVER_DEPLOYED, path
        if path.endswith(".pyc"):  # python3.10's byte code only (see below)
            assert path.endswith(".cpython-310.pyc") and path.split("/")[-2] == "__pycache__", path
        if top == "__pycache__":  # at the root: handler.py's byte code (deploy/build.py), never dev.py's
            assert path == "__pycache__/handler.cpython-310.pyc", path
    allowed_top = {"handler.py", "requirements.txt", "imm_batch_updater", "schema", "python", "__pycache__"}
    assert {p.split("/", 1)[0] for p in packaged} <= allowed_top


def test_the_package_holds_nothing_else(packaged):
    assert_only_the_function(packaged)


def test_the_package_holds_nothing_else_after_a_build_or_a_python310_run(tmp_path):
    """deploy/build.py writes __pycache__/handler.cpython-310.pyc at the root, and so does any Python 3.10 that
    imports handler there (tests/conftest.py does, in CI's 3.10 run): the check above must accept it."""
    (tmp_path / ".fcignore").write_text((ROOT / ".fcignore").read_text())
    for name in [
        "handler.py",
        "__pycache__/handler.cpython-310.pyc",
        "__pycache__/dev.cpython-310.pyc",
        "imm_batch_updater/app.py",
        "imm_batch_updater/__pycache__/app.cpython-310.pyc",
        "python/requests/__pycache__/api.cpython-310.pyc",
    ]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    packaged = packaged_files(tmp_path)
    assert "__pycache__/handler.cpython-310.pyc" in packaged
    assert_only_the_function(packaged)


def test_dependencies_installed_by_s_build_are_packaged(tmp_path):
    """`s build` puts the dependencies in ./python (PYTHONPATH=/code/python): they must not be filtered out."""
    (tmp_path / ".fcignore").write_text((ROOT / ".fcignore").read_text())
    (tmp_path / "handler.py").write_text("")
    for name in ("python/mns/__init__.py", "python/fc2/client.py", "python/bin/jp.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    files = packaged_files(tmp_path)
    assert {"python/mns/__init__.py", "python/fc2/client.py", "python/bin/jp.py"} <= set(files)


def test_python310_byte_code_is_packaged_and_other_versions_are_not(tmp_path):
    """FC's /code is read-only: Python cannot write byte code there, so a module shipped without its .pyc files is
    compiled again on every cold start (about 0.5 s for this lock's dependencies, 25 ms for our own modules:
    docs/deploy.md, 4). `deploy/build.py` writes python3.10 byte code for both; the caches another Python leaves
    next to our modules stay out, and so do stray .pyc files."""
    (tmp_path / ".fcignore").write_text((ROOT / ".fcignore").read_text())
    kept = [
        "python/alibabacloud_imm20200930/__pycache__/client.cpython-310.pyc",
        "python/requests/__pycache__/api.cpython-310.pyc",
        "python/a/b/c/__pycache__/d.cpython-310.pyc",
        "python/__pycache__/six.cpython-310.pyc",
        "__pycache__/handler.cpython-310.pyc",
        "imm_batch_updater/__pycache__/app.cpython-310.pyc",
        "imm_batch_updater/sinks/__pycache__/log.cpython-310.pyc",
        "imm_batch_updater/sources/__pycache__/http.cpython-310.pyc",
    ]
    dropped = [
        "__pycache__/handler.cpython-311.pyc",
        "__pycache__/stray.cpython-312.pyc",
        "__pycache__/dev.cpython-310.pyc",  # dev.py imported by a test on 3.10: not part of the function
        "imm_batch_updater/__pycache__/app.cpython-312.pyc",
        "imm_batch_updater/sinks/__pycache__/log.cpython-311.pyc",
        "imm_batch_updater/__pycache__/app.cpython-310.opt-1.pyc",
        "tests/__pycache__/conftest.cpython-310.pyc",
        "schema/__pycache__/x.cpython-310.pyc",
        "stray.pyc",
        "imm_batch_updater/old.pyc",
        "imm_batch_updater/sinks/log.cpython-310.pyc",
        "python/__pycache__/six.cpython-312.pyc",  # a developer's Python importing from ./python
        "python/requests/__pycache__/api.cpython-311.pyc",
        "python/requests/__pycache__/api.cpython-310.opt-1.pyc",
        "python/stray.pyc",
        "python/requests/api.cpython-310.pyc",
    ]
    for name in [*kept, *dropped, "handler.py", "imm_batch_updater/app.py"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    files = set(packaged_files(tmp_path))
    assert set(kept) <= files
    assert not set(dropped) & files, sorted(set(dropped) & files)
    assert {"handler.py", "imm_batch_updater/app.py"} <= files


def test_a_local_env_file_is_never_packaged(tmp_path):
    (tmp_path / ".fcignore").write_text((ROOT / ".fcignore").read_text())
    (tmp_path / ".env").write_text("WEBHOOK_SECRET=whsec_x")
    (tmp_path / "handler.py").write_text("")
    assert packaged_files(tmp_path) == ["handler.py"]


def test_fcignore_uses_only_what_the_walker_model_implements():
    for line in (ROOT / ".fcignore").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            assert line == line.strip(), f"no surrounding spaces in rules: {line!r}"
            assert not unsupported(line), line


# -- the walker model against the behaviour of @serverless-devs/ignore-walk -------------------------------------
FIXTURE_FCIGNORE = """# from Serverless-Devs/toolkit packages/ignore-walk/__tests__/fixtures/ignore-code/.fcignore
ignore-all/

ignore-non-root-dir
!/ignore-non-root-dir

/.hide-dir

dir-2/file

keep-empty-dir/**
"""
FIXTURE_FILES = [
    "apt-get.list",
    "index.js",
    ".hide-dir/apt-get.list",
    ".hide-dir/apt-get2.list",
    "dir-2/.hide-dir/apt-get.list",
    "dir-2/file",
    "dir-2/ignore-all/test",
    "dir-2/ignore-non-root-dir/index",
    "dir-2/no-ignore/file",
    "ignore-all/test",
    "ignore-non-root-dir/index",
    "keep-empty-dir/ignore-file",
]


def test_walker_model_on_the_upstream_fixture(tmp_path):
    (tmp_path / ".fcignore").write_text(FIXTURE_FCIGNORE)
    for name in FIXTURE_FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    (tmp_path / "empty-dir").mkdir()
    files = set(packaged_files(tmp_path))
    # What the upstream test expects to be packaged ...
    assert {
        ".fcignore",
        "apt-get.list",
        "dir-2/.hide-dir/apt-get.list",
        "dir-2/no-ignore/file",
        "empty-dir",
        "ignore-non-root-dir/index",
        "index.js",
    } <= files
    # ... and what the fixture's comments say is ignored.
    for gone in ("ignore-all/test", ".hide-dir/apt-get.list", "dir-2/file", "dir-2/ignore-non-root-dir/index"):
        assert gone not in files, gone
    assert "keep-empty-dir/ignore-file" not in files and "keep-empty-dir" not in files


@pytest.mark.parametrize(
    ("pattern", "path", "partial", "hit"),
    [
        ("/tests", "/tests", False, True),
        ("/tests", "tests", False, False),
        ("/tests", "/imm_batch_updater/tests", False, False),
        ("/tests", "/tests/", False, True),  # a trailing slash on the path is allowed
        ("__pycache__", "imm_batch_updater/sinks/__pycache__", False, True),  # matchBase
        ("*.pyc", "/a/b/c.PYC", False, True),  # nocase
        ("*", "/.hidden", False, True),  # dot
        ("a/**", "a/b/c", False, True),
        ("a/**/c", "a/c", False, True),
        ("a/b/c", "a", True, True),  # partial: a directory on the way
        ("a/b/c", "a", False, False),
    ],
)
def test_minimatch_model(pattern, path, partial, hit):
    assert Rule.parse(pattern).match(path, partial) is hit


def _requirement_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(_canonical(line.split("==", 1)[0]))
    return names


def _canonical(name: str) -> str:
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


def _providers() -> dict[str, set[str]]:
    """Top-level module -> the installed distributions providing it (`packages_distributions` before Python 3.11
    reads only top_level.txt, which wheels built by hatchling and others do not have; the file list always works)."""
    from importlib.metadata import distributions

    providers: dict[str, set[str]] = {}
    for dist in distributions():
        tops = set((dist.read_text("top_level.txt") or "").split())
        for file in dist.files or []:
            top = file.parts[0] if file.parts else ""
            if top and top != ".." and not top.endswith((".dist-info", ".egg-info", ".data")):
                tops.add(top.removesuffix(".py"))
        for top in tops:
            providers.setdefault(top, set()).add(_canonical(dist.metadata["Name"]))
    return providers


def _deployed_imports(packaged: list[str]) -> dict[str, str]:
    """Top-level modules imported by the deployed code, outside the standard library: {module: first file}."""
    import ast
    import sys

    found: dict[str, str] = {}
    for path in packaged:
        if not path.endswith(".py") or path.startswith("python/"):
            continue
        for node in ast.walk(ast.parse((ROOT / path).read_text())):
            if isinstance(node, ast.Import):
                tops = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                tops = [node.module.split(".")[0]]
            else:
                continue
            for top in tops:
                if top not in sys.stdlib_module_names and top != "imm_batch_updater":
                    found.setdefault(top, path)
    return found


def test_requirements_in_names_exactly_what_the_deployed_code_imports(packaged):
    """Every distribution the deployed code imports is a direct, pinned dependency in requirements.in, and every one
    listed there is imported: a transitive dependency the code uses directly must be declared (its pin could
    otherwise move under it), and requirements-dev.txt (tests, bench) is never installed into the function."""
    direct = _requirement_names(ROOT / "requirements.in")
    providers = _providers()
    undeclared: dict[str, str] = {}
    used: set[str] = set()
    for top, path in sorted(_deployed_imports(packaged).items()):
        declared = providers.get(top, set()) & direct
        if declared:
            used |= declared
        else:
            undeclared[top] = f"{path} (provided by {sorted(providers.get(top, set())) or 'nothing installed'})"
    assert not undeclared, f"imported by deployed code but not a direct dependency in requirements.in: {undeclared}"
    assert not direct - used, f"requirements.in lists what no deployed module imports: {sorted(direct - used)}"


def test_the_published_schema_is_the_one_the_package_loads():
    """schema/ (for other tools) and the package's own copy (read with importlib.resources) are the same file."""
    published = (ROOT / "schema" / "update-request.schema.json").read_bytes()
    packaged = (ROOT / "imm_batch_updater" / "schema" / "update-request.schema.json").read_bytes()
    assert published == packaged
    from imm_batch_updater.validation import schema_text

    assert schema_text().encode() == packaged
