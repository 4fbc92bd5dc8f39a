"""Fleet updates: a document with a `Selector` instead of an `Id` changes every batch IMM's ListBatches matches
(README "Fleet updates").

    {"ProjectName": "media", "Selector": {"State": "Failed", "TagSelector": "pipeline=video"},
     "Actions": [{"Name": "video/convert", "Parameters": ["fps=30"]}], "Resume": true, "MaxBatches": 500}

`expand` lists the matches (every page, IMM's own filters) and turns the document into one request per batch, in
listing order, each carrying the batch as the listing showed it: the precheck, the `DryRun` plan and the audit
`diff` need no GetBatch per batch. Then:

- no batch matches: one `not_found` `NoMatchingBatches` result (`batch_id` null);
- more than `MaxBatches` (default 100) match: one `rejected` `TooManyBatches` result, and nothing is changed (the
  listing stops as soon as the limit is passed);
- `DryRun`: a plan, one `dry_run` (or `conflict`) result with its diff per batch; never fanned out;
- more than `FANOUT_BATCHES` match and `WORK_QUEUE` is set: nothing is applied here; one single-`Id` document per
  batch goes to the work queue (`workqueue.send`) and each batch's result is `queued`;
- otherwise the per-batch requests are applied in this invocation like documents naming each `Id`.

Every result carries the document's `index` (bulk) and `message_id`; the ListBatches calls are counted in the
first result's `attempts`.
"""

from __future__ import annotations

from typing import Any

from imm_batch_updater.context import Context
from imm_batch_updater.documents import Item, UpdateRequest
from imm_batch_updater.imm import ImmClient, ImmError, Kind
from imm_batch_updater.outcome import ErrorInfo, Outcome, Status, replace
from imm_batch_updater.retry import attempts_of

PAGE_SIZE = 100  # ListBatches' largest MaxResults (IMM API reference)


def _result(request: UpdateRequest, status: Status, code: str, message: str, attempts: int) -> Outcome:
    return Outcome(
        status,
        project=request.project,
        batch_id=None,
        error=ErrorInfo(code, message),
        attempts=attempts,
        source=request.source,
        message_id=request.message_id,
        index=request.index,
    )


def list_matches(request: UpdateRequest, imm: ImmClient) -> tuple[list[dict[str, Any]], int] | Outcome:
    """(the matched batches in listing order, ListBatches calls made), or the outcome that ends the document."""
    from imm_batch_updater.apply import failure

    assert request.selector is not None
    batches: list[dict[str, Any]] = []
    positions: dict[str, int] = {}  # batch Id -> its place in `batches`
    seen_tokens: set[str] = set()
    token: str | None = None
    attempts = 0
    while True:
        try:
            page = imm.list_batches(
                request.project, request.selector.state, request.selector.tag_selector, token, PAGE_SIZE
            )
        except ImmError as exc:
            return replace(failure(request, exc, attempts + attempts_of(exc)), batch_id=None)
        attempts += page.attempts
        for batch in page.batches or []:
            # Pages that change between calls (another writer, a batch whose sort key moved) can list a batch
            # twice: it is one match (one result, counted once against MaxBatches), at its first place, with the
            # later (newer) view.
            place = positions.get(batch["Id"])
            if place is None:
                positions[batch["Id"]] = len(batches)
                batches.append(batch)
            else:
                batches[place] = batch
        if len(batches) > request.max_batches:
            return _result(
                request,
                Status.REJECTED,
                "TooManyBatches",
                f"the selector matches more than MaxBatches ({request.max_batches}) batches; nothing was changed "
                "(raise MaxBatches, up to 10000, or narrow the selector)",
                attempts,
            )
        token = page.next_token
        if not token:
            return batches, attempts
        if token in seen_tokens:  # an answer that would make us list forever is not IMM's
            error = ImmError(Kind.ANSWER, "InvalidResponse", "ListBatches returned a NextToken it had returned before")
            return replace(failure(request, error, attempts), batch_id=None)
        seen_tokens.add(token)


def expand(request: UpdateRequest, imm: ImmClient, ctx: Context) -> list[Item]:
    """The items `request` (a selector document) stands for: per-batch requests, or outcomes."""
    listed = list_matches(request, imm)
    if isinstance(listed, Outcome):
        return [listed]
    batches, attempts = listed
    if not batches:
        return [_result(request, Status.NOT_FOUND, "NoMatchingBatches", "no batch matches the selector", attempts)]
    per_batch: list[Item] = [request._replace(batch_id=b["Id"], selector=None, current=b) for b in batches]
    return _count_listing(per_batch, attempts)


def may_fan_out(request: UpdateRequest, expanded: list[Item], ctx: Context) -> bool:
    """Is this expansion large enough to go to the work queue (and allowed to: never a DryRun)?"""
    settings = ctx.settings
    if request.dry_run or not settings.work_queue:
        return False
    return sum(isinstance(i, UpdateRequest) for i in expanded) > settings.fanout_batches


def fan_out(items: list[Item], groups: list[tuple[int, int]], ctx: Context) -> list[Item]:
    """`items` with each selection `items[start:end]` in `groups` sent to the work queue (its requests replaced by
    their `queued` outcomes), unless another document of the delivery targets one of its batches: the queued copies
    are applied later, by other invocations, so such a selection is applied here, keeping the delivery order (the
    last document for a batch wins)."""
    from imm_batch_updater import logs
    from imm_batch_updater.workqueue import send

    items = list(items)
    for start, end in groups:
        own = {i.key for i in items[start:end] if isinstance(i, UpdateRequest)}
        others = {i.key for n, i in enumerate(items) if isinstance(i, UpdateRequest) and not start <= n < end}
        if own.isdisjoint(others):
            items[start:end] = send([i for i in items[start:end] if isinstance(i, UpdateRequest)], ctx)
        else:
            logs.info(
                "selection applied here, not fanned out: another document of the delivery targets its batches",
                request_id=ctx.request_id,
                batches=len(own),
            )
    return items


def _count_listing(items: list[Item], attempts: int) -> list[Item]:
    """Charge the ListBatches calls to the first item (an outcome now, or a request whose outcome will hold them)."""
    first = items[0]
    if isinstance(first, Outcome):
        items[0] = replace(first, attempts=first.attempts + attempts)
    else:
        items[0] = first._replace(listing_attempts=attempts)
    return items
