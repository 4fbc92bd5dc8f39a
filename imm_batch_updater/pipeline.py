"""Apply the items of one delivery: per-batch order kept, different batches in parallel, duplicates once.

- Documents for the same batch run one after the other in delivery order, so the last one wins.
- Different batches run in parallel on at most `concurrency` threads.
- A document identical to the one applied just before it for the same batch (a redelivered duplicate) is not sent
  to IMM again; it gets a copy of that result. Only *consecutive* duplicates are skipped: A, B, A must end with A.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from imm_batch_updater.documents import Item, UpdateRequest
from imm_batch_updater.outcome import Outcome, replace

Apply = Callable[[UpdateRequest], Outcome]


def _run_group(requests: list[tuple[int, UpdateRequest]], apply: Apply) -> list[tuple[int, Outcome]]:
    if len(requests) == 1:  # the common case: nothing to compare with, so no fingerprint to compute
        position, request = requests[0]
        return [(position, apply(request))]
    results: list[tuple[int, Outcome]] = []
    previous: tuple[str, Outcome] | None = None
    for position, request in requests:
        fingerprint = request.fingerprint()
        if previous is not None and previous[0] == fingerprint:
            duplicate = replace(previous[1], index=request.index, message_id=request.message_id, attempts=0)
            results.append((position, duplicate))
            continue
        result = apply(request)
        previous = (fingerprint, result)
        results.append((position, result))
    return results


def process(items: list[Item], apply: Apply, concurrency: int = 8) -> list[Outcome]:
    """Outcomes in the order of `items` (already-final `Outcome` items pass through)."""
    if len(items) == 1 and isinstance(items[0], UpdateRequest):  # one document (the common webhook case)
        return [apply(items[0])]
    outcomes: list[Outcome | None] = [item if isinstance(item, Outcome) else None for item in items]
    groups: dict[tuple[str, str], list[tuple[int, UpdateRequest]]] = {}
    for position, item in enumerate(items):
        if isinstance(item, UpdateRequest):
            groups.setdefault(item.key, []).append((position, item))
    if len(groups) <= 1 or concurrency <= 1:
        # One batch (the common webhook case): no threads at all.
        done = [r for group in groups.values() for r in _run_group(group, apply)]
    else:
        with ThreadPoolExecutor(max_workers=min(concurrency, len(groups)), thread_name_prefix="update") as pool:
            futures = [pool.submit(_run_group, group, apply) for group in groups.values()]
            done = [r for f in futures for r in f.result()]
    for position, result in done:
        outcomes[position] = result
    return [o for o in outcomes if o is not None]
