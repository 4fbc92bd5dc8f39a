"""Turn the results of a change back into the documents that undo it: `python3 dev.py revert RESULTS`.

RESULTS is what the function answered (`{"results": [...]}`, or a JSON array of results), or its outcome log lines
as exported from SLS (one JSON object per line; other lines, such as `python3 dev.py serve`'s banner, are skipped).
Every `updated` result that read the batch first carries `diff` (`{field: {"from", "to"}}`); for each batch, the
first `from` of each field is the value before the change (the earliest by the log lines' `ts`, whatever order
they are in, and by `index` among one message's lines, which share their invocation's `ts`; a results file in its
order), and the output is a JSON array of update documents
that set those values again:

    python3 dev.py revert results.json > revert.json      # review it, then send it like any other update
    python3 dev.py revert sls-export.jsonl --dry-run      # the same documents with "DryRun": true, to preview
    python3 dev.py revert big-change.jsonl --out-dir undo # more than 100: revert-001.json, ... of 100 each

A message holds at most MAX_DOCUMENTS (default 100) documents and MAX_BODY_BYTES (default 1 MiB): more than
`--per-file` documents (or `--max-bytes`) are written to `--out-dir` in files of at most that many, each one
message to send. A directory that already holds revert-*.json files (an earlier run's) is refused, so that no other
change's documents are sent with these.

What cannot be undone this way is listed on stderr: a field the batch did not have before (UpdateBatch cannot
remove one; `from` is null), a `Resume` (a resumed batch is not suspended again), and a batch whose values before
the request schema refuses (IMM may hold more than the 50 tags a document may carry): no document is written for
it, since the function would refuse it as `invalid`. Development tool: never deployed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from imm_batch_updater.documents import CHANGE_FIELDS
from imm_batch_updater.validation import validate


def results_in(text: str) -> list[dict[str, Any]]:
    """The result objects in a results file or in outcome log lines. Lines that are not JSON objects (a server's
    banner, other output) and log lines other than `outcome` are skipped; ValueError when no result is left."""
    return read_results(text)[0]


def read_results(text: str) -> tuple[list[dict[str, Any]], int]:
    """(`results_in(text)`, how many lines of log-line input look like outcome lines but are not JSON): each line is
    parsed once. A line holding `"msg":"outcome"` that does not parse was cut short or damaged on the way: its batch
    cannot be reverted, and that is said, never skipped like a banner."""
    stripped = text.strip()
    unreadable = 0
    try:
        data = json.loads(stripped) if stripped else []
    except json.JSONDecodeError:
        data = []
        # JSON lines, perhaps among other output (`python3 dev.py serve`'s): split at "\n" only, never where
        # `str.splitlines` also would (U+2028, U+2029, U+0085, ...): a log line writes those raw, inside a value.
        for line in stripped.split("\n"):
            try:
                data.append(json.loads(line))
            except json.JSONDecodeError:
                unreadable += bool(_OUTCOME_LINE.search(line))
    if isinstance(data, dict):
        data = data["results"] if isinstance(data.get("results"), list) else [data]
    if not isinstance(data, list):
        data = []
    results = [r for r in data if isinstance(r, dict) and "status" in r and r.get("msg", "outcome") == "outcome"]
    if results and all(isinstance(r.get("ts"), str) for r in results):
        # Log lines in the order they were written (`ts`, UTC, fixed width: sorts as text; stable for equal ones):
        # SLS shows and exports newest first, and a fan-out's lines come from many instances.
        results.sort(key=lambda r: r["ts"])
        _messages_in_index_order(results)
    if not results:
        raise ValueError(
            'it holds no result: expected the function\'s answer {"results": [...]}, a JSON array of results, or '
            "outcome log lines (one JSON object per line)"
        )
    return results, unreadable


_OUTCOME_LINE = re.compile(r'"msg"\s*:\s*"outcome"')


def _messages_in_index_order(results: list[dict[str, Any]]) -> None:
    """The lines of one invocation share one `ts` (written in one piece), so the sort by `ts` keeps them as given,
    newest first from SLS: the lines of one message (same `ts`, `request_id` and `message_id`) are put back in the
    order of their `index` (the delivery order: a bulk message changing one batch twice), in the places they hold."""
    places: dict[tuple[Any, ...], list[int]] = {}
    for n, result in enumerate(results):
        index = result.get("index")
        if isinstance(index, int) and not isinstance(index, bool):
            places.setdefault((result["ts"], result.get("request_id"), result.get("message_id")), []).append(n)
    for group in places.values():
        ordered = sorted((results[n] for n in group), key=lambda r: r["index"])  # stable: a selection's lines stay
        for n, result in zip(group, ordered, strict=True):
            results[n] = result


RESUME_FAILED = "updated, but ResumeBatch failed"  # apply.py's prefix: the update was made, only the resume not


def _applied(result: dict[str, Any]) -> bool:
    """Did this result's UpdateBatch change the batch? `updated`, and also a result whose update was made but whose
    ResumeBatch then failed (its status is the resume's: `throttled`, `failed`, `rejected`): it carries the only
    `diff` of the change, since the redelivery finds the values already there."""
    if result.get("status") == "updated":
        return True
    error = result.get("error")
    message = error.get("message") if isinstance(error, dict) else result.get("error_message")
    return isinstance(message, str) and message.startswith(RESUME_FAILED)


# The one note that asks nothing of the reader batch by batch: `grouped` shortens it for a fleet. The others name
# a batch to put back by hand, so each batch keeps its own line.
RESUMED_NOTE = (
    "was resumed; reverting its fields does not stop it, and IMM updates only Ready and Failed batches: the revert "
    "answers `conflict` while it runs, is suspended or has succeeded"
)


def revert_documents(
    results: Iterable[dict[str, Any]], dry_run: bool = False
) -> tuple[list[dict[str, Any]], list[str]]:
    """(documents that put every changed batch back, notes on what they cannot put back)."""
    before: dict[tuple[str, str], dict[str, Any]] = {}
    notes: list[str] = []
    for result in results:
        if not _applied(result):
            continue
        key = (result.get("project"), result.get("batch_id"))
        if not all(isinstance(k, str) for k in key):
            continue
        if not isinstance(result.get("diff"), dict):
            if not result.get("unchanged"):  # changed without being read first (IMM_PRECHECK=false): no `from`
                notes.append(
                    f"{key[0]}/{key[1]}: updated without a diff (not read first); its values before are unknown"
                )
            continue
        fields = before.setdefault(key, {})  # type: ignore[arg-type]
        for name, change in result["diff"].items():
            if name in CHANGE_FIELDS and isinstance(change, dict) and name not in fields:
                fields[name] = change.get("from")
        if result.get("resumed"):
            notes.append(f"{key[0]}/{key[1]}: {RESUMED_NOTE}")
    documents = []
    for (project, batch_id), fields in before.items():
        restorable = {k: v for k, v in fields.items() if v is not None}
        for name in sorted(set(fields) - set(restorable)):
            notes.append(f"{project}/{batch_id}: had no {name} before; UpdateBatch cannot remove it")
        if restorable:
            document = {"ProjectName": project, "Id": batch_id, **restorable}
            if dry_run:
                document["DryRun"] = True
            problems = validate(document)
            if problems:  # IMM held a value the schema refuses (e.g. more than 50 tags): the function would too
                shown = "; ".join(f"{p.path or '/'}: {p.message}" for p in problems[:3])
                more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
                notes.append(
                    f"{project}/{batch_id}: its values before do not pass the request schema, so no document is "
                    f"written for it ({shown}{more}); put it back by hand"
                )
                continue
            documents.append(document)
    return documents, notes


def messages(documents: list[dict[str, Any]], per_message: int, max_bytes: int) -> list[list[dict[str, Any]]]:
    """`documents` in order, cut into messages of at most `per_message` documents and at most `max_bytes` bytes as
    written (`encoded`); a document larger than `max_bytes` on its own is a message of its own."""
    chunks: list[list[dict[str, Any]]] = []
    size = 0
    for document in documents:
        # Its bytes inside the indented array: `encoded([document])` less "[\n" and "\n]\n", plus ",\n" after the one
        # before it; an array of one is `encoded([document])` bytes.
        one = len(encoded([document]))
        if chunks and len(chunks[-1]) < per_message and size + one - 5 + 2 <= max_bytes:
            chunks[-1].append(document)
            size += one - 5 + 2
        else:
            chunks.append([document])
            size = one
    return chunks


def encoded(documents: list[dict[str, Any]]) -> bytes:
    """A message as written: an indented JSON array and a newline, UTF-8."""
    return (json.dumps(documents, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def nothing_to_revert(results: list[dict[str, Any]]) -> str:
    """Why results that yield no document revert nothing (one line)."""
    queued = [r for r in results if r.get("status") == "queued"]
    if queued and len(queued) == len(results):
        return (
            f"all {len(queued)} result(s) are `queued`: those batches were fanned out to the work queue and changed "
            "by later invocations, whose outcome log lines carry the diffs; revert from those log lines"
        )
    counts: dict[str, int] = {}
    for r in results:
        counts[str(r.get("status"))] = counts.get(str(r.get("status")), 0) + 1
    shown = ", ".join(f"{status} x{n}" for status, n in sorted(counts.items()))
    return f"nothing to revert: no `updated` result with a diff that can be put back ({shown})"


def queued_elsewhere(results: list[dict[str, Any]]) -> int:
    """How many `queued` batches have no other result here (what became of them is only in later log lines)."""
    applied = {(r.get("project"), r.get("batch_id")) for r in results if r.get("status") != "queued"}
    queued = {(r.get("project"), r.get("batch_id")) for r in results if r.get("status") == "queued"}
    return len(queued - applied)


def grouped(notes: list[str], named: int = 3) -> list[str]:
    """The notes with one line for the resumed batches (`RESUMED_NOTE`: a fleet change resumed hundreds): the first
    `named` batches and how many more, so that the line that matters is not scrolled away. Every other note stays
    as it is, one per batch: each names a batch to put back by hand."""
    batches_by_text: dict[str, list[str]] = {}
    out = []
    for note in notes:
        batch, sep, text = note.partition(": ")
        if sep and text == RESUMED_NOTE:
            batches_by_text.setdefault(text, []).append(batch)
        else:
            out.append(note)
    for text, batches in batches_by_text.items():
        if len(batches) <= named + 1:
            out.extend(f"{batch}: {text}" for batch in batches)
        else:
            out.append(f"{', '.join(batches[:named])} and {len(batches) - named} more batches: {text}")
    return out


def _count(text: str) -> int:
    """--per-file: a whole number of at least 1 (0 failed on range(); a negative one wrote no file at all)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


EPILOG = """exit codes: 0 the documents were written; 1 nothing to revert (no `updated` result with a diff: for example
every result is `queued`, fanned out to the work queue, so revert from the outcome log lines of the invocations
that applied them, which carry the diffs); 2 RESULTS cannot be read or holds no result, or more documents than
--per-file (or --max-bytes) without --out-dir. Lines that are not JSON
(a server's banner) are skipped in log-line input. `queued` results among others are counted in a note on stderr.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 dev.py revert",
        description=__doc__.split("\n\n")[0],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "results", help="results file (- for standard input): the function's answer, a JSON array, or outcome log lines"
    )
    parser.add_argument("--dry-run", action="store_true", help='add "DryRun": true to every document')
    parser.add_argument(
        "--per-file", type=_count, default=100, help="documents per message (MAX_DOCUMENTS, default 100; at least 1)"
    )
    parser.add_argument(
        "--max-bytes",
        type=_count,
        default=None,
        help="bytes per message (default MAX_BODY_BYTES from the environment, else 1048576)",
    )
    parser.add_argument(
        "--out-dir", help="write revert-001.json, ... (each at most --per-file documents and --max-bytes) here"
    )
    args = parser.parse_args(argv)
    if args.max_bytes is None:
        from imm_batch_updater.config import Settings

        args.max_bytes = Settings.from_env().max_body_bytes
    try:
        if args.results == "-":  # e.g. exported log lines piped in
            text = sys.stdin.buffer.read().decode("utf-8-sig")
        else:
            with open(args.results, encoding="utf-8-sig") as file:  # a BOM (Windows editors) is not a line
                text = file.read()
        results, unreadable = read_results(text)
    except OSError as exc:
        print(f"dev.py revert: cannot read {args.results}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except (ValueError, UnicodeDecodeError) as exc:
        print(f"dev.py revert: {args.results} is not results or outcome log lines: {exc}", file=sys.stderr)
        return 2
    documents, notes = revert_documents(results, dry_run=args.dry_run)
    if unreadable:
        notes.insert(
            0,
            f"{unreadable} line(s) look like outcome log lines but are not JSON (cut short?): the changes they record "
            "are not reverted; find those batches' lines in the full log",
        )
    for note in grouped(notes):
        print(f"note: {note}", file=sys.stderr)
    if not documents:
        print(f"dev.py revert: {nothing_to_revert(results)}", file=sys.stderr)
        return 1
    elsewhere = queued_elsewhere(results)
    if elsewhere:
        print(
            f"note: {elsewhere} batch(es) are only `queued` here (fanned out): revert them from the outcome log lines "
            "of the invocations that applied them",
            file=sys.stderr,
        )
    if args.out_dir:
        out = Path(args.out_dir)
        earlier = sorted(out.glob("revert-*.json")) if out.is_dir() else []
        if earlier:  # another run's files next to this one's would be sent with them: never mix the two
            print(
                f"dev.py revert: {out} already holds {earlier[0].name}"
                f"{f' and {len(earlier) - 1} more revert file(s)' if len(earlier) > 1 else ''} of an earlier run: "
                "remove them or name another --out-dir (nothing was written)",
                file=sys.stderr,
            )
            return 2
        out.mkdir(parents=True, exist_ok=True)
        chunks = messages(documents, args.per_file, args.max_bytes)
        for n, chunk in enumerate(chunks, start=1):
            path = out / f"revert-{n:03d}.json"
            data = encoded(chunk)
            path.write_bytes(data)
            print(path)
            if len(data) > args.max_bytes:  # one document alone: the function refuses it as TooLarge
                print(
                    f"note: {path.name} is {len(data)} bytes, more than one message holds ({args.max_bytes}): raise "
                    "MAX_BODY_BYTES on the function (and --max-bytes) before sending it",
                    file=sys.stderr,
                )
        print(f"{len(documents)} document(s) in {len(chunks)} file(s) revert the change", file=sys.stderr)
        return 0
    data = encoded(documents)
    if len(documents) > args.per_file or (len(data) > args.max_bytes and len(documents) > 1):
        held = f"{args.per_file} documents" if len(documents) > args.per_file else f"{args.max_bytes} bytes"
        print(
            f"dev.py revert: {len(documents)} documents ({len(data)} bytes) are more than one message holds ({held}); "
            "write them in files of one message each with --out-dir DIR",
            file=sys.stderr,
        )
        return 2
    sys.stdout.write(data.decode("utf-8"))
    print(f"{len(documents)} document(s) revert the change", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
