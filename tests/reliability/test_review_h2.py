"""Review (h2) of the fleet, apply and revert changes: faults found, each with the test that showed it."""

from __future__ import annotations

from devtools.revert import results_in, revert_documents

FLEET = "fleet-project"


def test_revert_of_one_invocations_lines_exported_newest_first_restores_the_value_before_the_first_change(
    invoke, emu, capsys
):
    """All the outcome lines of one invocation share one `ts` (sinks/log.py writes them in one piece), so sorting
    by `ts` cannot order two changes to one batch made by one bulk message (v 0 -> 1 -> 2, the last one wins).
    Read newest first (SLS), the revert set v back to 1. Within one message, `index` is the delivery order."""
    [batch_id] = emu.imm.create_batches(FLEET, 1, state="Ready", tags={"v": "0"})
    capsys.readouterr()
    results = invoke.direct([{"ProjectName": FLEET, "Id": batch_id, "Tags": {"v": step}} for step in ("1", "2")])
    assert [r["status"] for r in results["results"]] == ["updated", "updated"]
    lines = [line for line in capsys.readouterr().out.split("\n") if '"msg":"outcome"' in line]
    assert len(lines) == 2
    for text in ("\n".join(lines), "\n".join(reversed(lines))):
        documents, _ = revert_documents(results_in(text + "\n"))
        assert documents == [{"ProjectName": FLEET, "Id": batch_id, "Tags": {"v": "0"}}]


def test_a_selections_first_batch_read_again_counts_the_listing_when_its_read_fails(invoke, emu, fn_env):
    """`attempts` is the IMM calls made, and a selection's ListBatches calls are counted in its first result. When
    an earlier document of the delivery targets that batch, the listing's view is stale and the batch is read again
    (GetBatch, even with IMM_PRECHECK=false): a read that failed reported its own calls only, the listing's lost."""
    fn_env.setenv("IMM_PRECHECK", "false")
    ids = emu.imm.create_batches(FLEET, 2, state="Ready", tags={"tier": "gold"})
    selection = {"ProjectName": FLEET, "Selector": {"TagSelector": "tier=gold"}, "Tags": {"tier": "gold", "v": "1"}}
    emu.faults.inject("GetBatch", "error", count=1, status=403, code="Forbidden.RAM", message="No GetBatch.")
    results = invoke.direct([{"ProjectName": FLEET, "Id": ids[0], "Tags": {"tier": "gold"}}, selection])["results"]
    assert [(r["batch_id"], r["status"]) for r in results] == [(ids[0], "updated"), (ids[0], "rejected")] + [
        (ids[1], "updated")
    ]
    calls = [c.action for c in emu.calls(service="imm")]
    assert calls.count("ListBatches") == 1 and calls.count("GetBatch") == 1
    assert sum(r["attempts"] for r in results) == len(calls)
