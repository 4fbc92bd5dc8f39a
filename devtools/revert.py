"""Turn the results of a change back into the documents that undo it: `python3 dev.py revert RESULTS`.

RESULTS is what the function answered (`{"results": [...]}`, or a JSON array of results), or its outcome log lines
as exported from SLS (one JSON object per line). Every `updated` result that read the batch first carries `diff`
(`{field: {"from", "to"}}`); for each batch, the first `from` seen of each field is the value before the change,
and the output is a JSON array of update documents that set those values again:

    python3 dev.py revert results.json > revert.json      # review it, then send it like any other update
    python3 dev.py revert sls-export.jsonl --dry-run      # the same documents with "DryRun": true, to preview
    python3 dev.py revert big-change.jsonl --out-dir undo # more than 100: revert-001.json, ... of 100 each

A message holds at most MAX_DOCUMENTS (default 100) documents: more than `--per-file` documents are written to
`--out-dir` in files of that many, each one message to send.

What cannot be undone this way is listed on stderr: a field the batch did not have before (UpdateBatch cannot
remove one; `from` is null) and a `Resume` (a resumed batch is not suspended again). Development tool: never
deployed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

CHANGE_FIELDS = ("Input", "Actions", "Tags")


def results_in(text: str) -> list[dict[str, Any]]:
    """The result objects in a results file or in exported outcome log lines."""
    stripped = text.strip()
    if not stripped:
        return []
    try:
        data = json.loads(stripped)
    except json.JSONDecodeError:
        data = [json.loads(line) for line in stripped.splitlines() if line.strip()]  # JSON lines
    if isinstance(data, dict):
        data = data.get("results", [data])
    if not isinstance(data, list):
        raise ValueError('expected {"results": [...]}, a JSON array of results, or JSON lines')
    return [r for r in data if isinstance(r, dict) and r.get("msg", "outcome") == "outcome"]


def revert_documents(
    results: Iterable[dict[str, Any]], dry_run: bool = False
) -> tuple[list[dict[str, Any]], list[str]]:
    """(documents that put every changed batch back, notes on what they cannot put back)."""
    before: dict[tuple[str, str], dict[str, Any]] = {}
    notes: list[str] = []
    for result in results:
        if result.get("status") != "updated" or not isinstance(result.get("diff"), dict):
            continue
        key = (result.get("project"), result.get("batch_id"))
        if not all(isinstance(k, str) for k in key):
            continue
        fields = before.setdefault(key, {})  # type: ignore[arg-type]
        for name, change in result["diff"].items():
            if name in CHANGE_FIELDS and isinstance(change, dict) and name not in fields:
                fields[name] = change.get("from")
        if result.get("resumed"):
            notes.append(f"{key[0]}/{key[1]}: was resumed; reverting its fields does not suspend it")
    documents = []
    for (project, batch_id), fields in before.items():
        restorable = {k: v for k, v in fields.items() if v is not None}
        for name in sorted(set(fields) - set(restorable)):
            notes.append(f"{project}/{batch_id}: had no {name} before; UpdateBatch cannot remove it")
        if restorable:
            document = {"ProjectName": project, "Id": batch_id, **restorable}
            if dry_run:
                document["DryRun"] = True
            documents.append(document)
    return documents, notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 dev.py revert", description=__doc__.split("\n\n")[0])
    parser.add_argument("results", help="results file: the function's answer, a JSON array, or outcome log lines")
    parser.add_argument("--dry-run", action="store_true", help='add "DryRun": true to every document')
    parser.add_argument("--per-file", type=int, default=100, help="documents per message (MAX_DOCUMENTS, default 100)")
    parser.add_argument("--out-dir", help="write revert-001.json, ... (each at most --per-file documents) here")
    args = parser.parse_args(argv)
    try:
        with open(args.results, encoding="utf-8") as file:
            documents, notes = revert_documents(results_in(file.read()), dry_run=args.dry_run)
    except OSError as exc:
        print(f"dev.py revert: cannot read {args.results}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except (ValueError, UnicodeDecodeError) as exc:
        print(f"dev.py revert: {args.results} is not results or outcome log lines: {exc}", file=sys.stderr)
        return 2
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if args.out_dir:
        out = Path(args.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        chunks = [documents[i : i + args.per_file] for i in range(0, len(documents), args.per_file)]
        for n, chunk in enumerate(chunks, start=1):
            path = out / f"revert-{n:03d}.json"
            path.write_text(json.dumps(chunk, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
            print(path)
        print(f"{len(documents)} document(s) in {len(chunks)} file(s) revert the change", file=sys.stderr)
        return 0
    if len(documents) > args.per_file:
        print(
            f"dev.py revert: {len(documents)} documents are more than one message holds ({args.per_file}); "
            "write them in files of that many with --out-dir DIR",
            file=sys.stderr,
        )
        return 2
    json.dump(documents, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")
    print(f"{len(documents)} document(s) revert the change", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
