"""The file list `s deploy` packages, computed with the fc3 component's own rules, in Python.

fc3 (devsapp/fc3 `src/subCommands/deploy/impl/function.ts`) zips `code` with `@serverless-devs/zip`
(`ignoreFiles: ['.fcignore']`), which lists files with `@serverless-devs/ignore-walk` (Serverless-Devs/toolkit
`packages/ignore-walk/src/index.ts`, a fork of npm's ignore-walk). This module follows that walker:

- every directory's `.fcignore` adds rules for that directory; a child directory is also checked against its
  parents' rules as `<dirname>/<entry>`;
- blank lines and lines starting with `#` are skipped; `./x` becomes `/x` and `!./x` becomes `!/x`;
- rules are minimatch 5 patterns with `{matchBase, dot, flipNegate, nocase}`; an entry is tested as `/entry` and
  `entry`, and (for the directory pass) `/entry/` and `entry/`; `!` rules re-include;
- an entry excluded as both file and directory is skipped without being read, so nothing below it is packaged;
- symlinks are not followed; an empty directory is listed itself.

Only the minimatch features this project's `.fcignore` may use are implemented (literal segments, `*`, `?`,
`[...]`, `**`, a leading `/`, a trailing `/`, `!`); `unsupported()` tells when a pattern needs more.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass
from pathlib import Path

IGNORE_FILE = ".fcignore"
_SLASHES = re.compile(r"/+")
_GLOBSTAR = object()


def unsupported(pattern: str) -> bool:
    """True when the pattern uses minimatch syntax this module does not implement (braces, extglobs, escapes)."""
    return bool(re.search(r"[{}\\]|[+@!]\(", pattern.lstrip("!")))


@dataclass
class Rule:
    negate: bool
    parts: list[object]  # str (literal, lower-cased), compiled regex, or _GLOBSTAR

    @classmethod
    def parse(cls, line: str) -> Rule:
        pattern = line
        if pattern.startswith("./"):
            pattern = pattern[1:]
        elif pattern.startswith("!./"):
            pattern = "!/" + pattern[3:]
        negate = False
        while pattern.startswith("!"):
            negate = not negate
            pattern = pattern[1:]
        parts: list[object] = []
        for segment in _SLASHES.split(pattern):
            if segment == "**":
                parts.append(_GLOBSTAR)
            elif any(c in segment for c in "*?["):
                parts.append(re.compile(fnmatch.translate(segment), re.IGNORECASE))
            else:
                parts.append(segment.lower())
        return cls(negate, parts)

    def match(self, path: str, partial: bool = False) -> bool:
        """minimatch's `match` with flipNegate: True when the (un-negated) pattern matches."""
        file = _SLASHES.split(path)
        if len(self.parts) == 1:  # matchBase: a pattern without a slash is matched against the basename
            name = next((s for s in reversed(file) if s), "")
            file = [name]
        return _match_one(file, self.parts, partial)


def _segment_matches(part: object, segment: str) -> bool:
    if isinstance(part, str):
        return part == segment.lower()
    if segment in (".", ".."):
        return False
    return bool(part.match(segment))  # type: ignore[union-attr]


def _match_one(file: list[str], parts: list[object], partial: bool) -> bool:
    fi = pi = 0
    while fi < len(file) and pi < len(parts):
        part, segment = parts[pi], file[fi]
        if part is _GLOBSTAR:
            if pi + 1 == len(parts):
                return all(s not in (".", "..") for s in file[fi:])
            start = fi
            while start < len(file):
                if _match_one(file[start:], parts[pi + 1 :], partial):
                    return True
                if file[start] in (".", ".."):
                    break
                start += 1
            return partial and start == len(file)
        if not _segment_matches(part, segment):
            return False
        fi += 1
        pi += 1
    if fi == len(file) and pi == len(parts):
        return True
    if fi == len(file):
        return partial
    return fi == len(file) - 1 and file[fi] == ""


class _Walker:
    def __init__(self, path: Path, parent: _Walker | None = None) -> None:
        self.path = path
        self.parent = parent
        self.basename = path.name
        self.rules: list[Rule] = []

    def filter_entry(self, entry: str, partial: bool) -> bool:
        included = True
        if self.parent is not None:
            included = self.parent.filter_entry(f"{self.basename}/{entry}", partial)
        for rule in self.rules:
            if rule.negate != included:
                hit = (
                    rule.match("/" + entry)
                    or rule.match(entry)
                    or (partial and (rule.match("/" + entry + "/") or rule.match(entry + "/")))
                    or (partial and rule.negate and (rule.match("/" + entry, True) or rule.match(entry, True)))
                )
                if hit:
                    included = rule.negate
        return included

    def walk(self, root: Path, result: set[str]) -> None:
        entries = sorted(os.listdir(self.path))
        if not entries:
            result.add(self.path.relative_to(root).as_posix())
            return
        if IGNORE_FILE in entries:
            text = (self.path / IGNORE_FILE).read_text(encoding="utf-8")
            self.rules = [
                Rule.parse(line) for line in text.splitlines() if line.strip() and not line.strip().startswith("#")
            ]
        for entry in entries:
            as_file, as_dir = self.filter_entry(entry, False), self.filter_entry(entry, True)
            if not (as_file or as_dir):
                continue
            full = self.path / entry
            if full.is_dir() and not full.is_symlink():
                if as_dir:
                    _Walker(full, self).walk(root, result)
            elif as_file:
                result.add(full.relative_to(root).as_posix())


def packaged_files(code_dir: Path) -> list[str]:
    """The paths (relative, `/`-separated) that `s deploy` would put in the code zip of `code_dir`."""
    result: set[str] = set()
    _Walker(code_dir).walk(code_dir, result)
    return sorted(result)
