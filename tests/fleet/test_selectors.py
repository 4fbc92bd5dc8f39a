"""Fleet updates (issue #13, README "Fleet updates"): one document with a `Selector` changes every batch IMM's
ListBatches matches, with the precheck, `Resume`, `DryRun`, `MaxBatches` and audit diffs of single-Id documents.
Everything runs through the official IMM SDK against the emulator."""

from __future__ import annotations

import json

import pytest

from tests.conftest import PROJECT

FLEET = "fleet-project"
NEW_ACTIONS = [{"Name": "video/convert", "Parameters": ["fps=30"]}]


@pytest.fixture
def fleet(emu):
    """12 gold batches (8 Failed, 4 Ready), 5 silver (Ready), 3 gold Running."""
    gold_failed = emu.imm.create_batches(FLEET, 8, state="Failed", tags={"tier": "gold"}, id_prefix="gf-")
    gold_ready = emu.imm.create_batches(FLEET, 4, state="Ready", tags={"tier": "gold"}, id_prefix="gr-")
    silver = emu.imm.create_batches(FLEET, 5, state="Ready", tags={"tier": "silver"}, id_prefix="s-")
    running = emu.imm.create_batches(FLEET, 3, state="Running", tags={"tier": "gold"}, id_prefix="grun-")
    return {"gold_failed": gold_failed, "gold_ready": gold_ready, "silver": silver, "running": running}


def doc(**fields):
    return {"ProjectName": FLEET, "Actions": NEW_ACTIONS, **fields}


def test_every_failed_gold_batch_is_updated_and_resumed(invoke, emu, fleet):
    status, body, _ = invoke.post(doc(Selector={"State": "Failed", "TagSelector": "tier=gold"}, Resume=True))
    results = body["results"]
    assert status == 200 and sorted(r["batch_id"] for r in results) == sorted(fleet["gold_failed"])
    assert all(r["status"] == "updated" and r["resumed"] is True for r in results)
    for batch_id in fleet["gold_failed"]:
        batch = emu.imm.get_batch(FLEET, batch_id)
        assert batch["Actions"] == NEW_ACTIONS and batch["State"] == "Running"
    for batch_id in fleet["gold_ready"] + fleet["silver"]:
        assert emu.imm.get_batch(FLEET, batch_id)["Actions"] != NEW_ACTIONS  # not selected: untouched
    # The listing's own view of each batch served as its precheck: no GetBatch per batch.
    assert emu.calls(action="GetBatch") == [] and len(emu.calls(action="ListBatches")) == 1


def test_results_come_in_listing_order_with_the_documents_index(invoke, emu, fleet):
    bulk = [
        {"ProjectName": PROJECT, "Id": "batch-demo-ready", "Tags": {"k": "v"}},
        doc(Selector={"TagSelector": "tier=silver"}),
    ]
    result = invoke.direct(bulk)["results"]
    assert [r["index"] for r in result] == [0] + [1] * 5
    listed = [b["Id"] for b in emu.imm.list_batches(FLEET) if (b.get("Tags") or {}).get("tier") == "silver"]
    assert [r["batch_id"] for r in result[1:]] == listed


def test_a_selection_that_includes_running_batches_reports_them_as_conflicts(invoke, emu, fleet):
    status, body, _ = invoke.post(doc(Selector={"TagSelector": "tier=gold"}))
    by_status = {}
    for r in body["results"]:
        by_status.setdefault(r["status"], []).append(r["batch_id"])
    assert status == 207
    assert sorted(by_status["conflict"]) == sorted(fleet["running"])
    assert sorted(by_status["updated"]) == sorted(fleet["gold_failed"] + fleet["gold_ready"])
    assert not [c for c in emu.calls(action="UpdateBatch") if any(r in c.body.decode() for r in fleet["running"])]


def test_dry_run_is_a_plan_with_one_diff_per_batch_and_changes_nothing(invoke, emu, fleet):
    before = {b["Id"]: b for b in emu.imm.list_batches(FLEET)}
    status, body, _ = invoke.post(doc(Selector={"State": "Ready"}, DryRun=True, Tags={"tier": "platinum"}))
    results = body["results"]
    assert {r["status"] for r in results} == {"dry_run"} and len(results) == 9
    for r in results:
        assert r["diff"]["Actions"] == {"from": before[r["batch_id"]]["Actions"], "to": NEW_ACTIONS}
        assert r["diff"]["Tags"]["to"] == {"tier": "platinum"}
    assert emu.calls(action="UpdateBatch") == [] and {b["Id"]: b for b in emu.imm.list_batches(FLEET)} == before


def test_more_matches_than_max_batches_changes_nothing(invoke, emu, fleet):
    status, body, _ = invoke.post(doc(Selector={"TagSelector": "tier=gold"}, MaxBatches=10))
    [result] = body["results"]
    assert status == 422 and result["status"] == "rejected" and result["error"]["code"] == "TooManyBatches"
    assert result["batch_id"] is None and emu.calls(action="UpdateBatch") == []


def test_max_batches_defaults_to_100_and_lists_every_page(invoke, emu):
    ids = emu.imm.create_batches(FLEET, 250, state="Ready", tags={"pipeline": "video"})
    [too_many] = invoke.direct(doc(Selector={"TagSelector": "pipeline=video"}))["results"]
    assert too_many["error"]["code"] == "TooManyBatches" and emu.calls(action="UpdateBatch") == []
    result = invoke.direct(doc(Selector={"TagSelector": "pipeline=video"}, MaxBatches=300))["results"]
    assert [r["batch_id"] for r in result] == ids and {r["status"] for r in result} == {"updated"}
    assert len(emu.calls(action="ListBatches")) >= 3 + 2  # three pages of 100 (and two for the refused one)


def test_no_match_is_not_found_with_no_batch(invoke, emu, fleet):
    status, body, _ = invoke.post(doc(Selector={"TagSelector": "tier=bronze"}))
    [result] = body["results"]
    assert status == 404 and result["error"]["code"] == "NoMatchingBatches" and result["batch_id"] is None


def test_an_unknown_project_is_not_found(invoke, emu):
    status, body, _ = invoke.post({**doc(Selector={"State": "Ready"}), "ProjectName": "no-such-project"})
    assert status == 404 and body["results"][0]["error"]["code"] == "ResourceNotFound"


@pytest.mark.parametrize(
    ("selector", "path"),
    [
        ({}, "/Selector"),
        ({"State": "Broken"}, "/Selector/State"),
        ({"Stat": "Ready"}, "/Selector/Stat"),
        ({"TagSelector": "no-equals-sign"}, "/Selector/TagSelector"),
        ({"TagSelector": "tier=gold\n"}, "/Selector/TagSelector"),
        ({"TagSelector": 7}, "/Selector/TagSelector"),
    ],
)
def test_malformed_selectors_are_invalid_with_their_path(invoke, emu, selector, path):
    status, body, _ = invoke.post(doc(Selector=selector))
    assert status == 400 and path in [d["path"] for d in body["results"][0]["error"]["details"]]
    assert emu.calls(service="imm") == []


@pytest.mark.parametrize(
    ("extra", "path"),
    [
        ({"Id": "batch-demo-ready"}, "/Selector"),  # Id and Selector: exactly one
        ({"MaxBatches": 0}, "/MaxBatches"),
        ({"MaxBatches": 10001}, "/MaxBatches"),
        ({"MaxBatches": 5.5}, "/MaxBatches"),
        ({"MaxBatches": "5"}, "/MaxBatches"),
    ],
)
def test_malformed_max_batches_and_id_with_selector_are_invalid(invoke, emu, extra, path):
    status, body, _ = invoke.post(doc(Selector={"State": "Ready"}, **extra))
    assert status == 400 and path in [d["path"] for d in body["results"][0]["error"]["details"]], body


def test_max_batches_without_a_selector_is_invalid(invoke, emu):
    status, body, _ = invoke.post({"ProjectName": PROJECT, "Id": "batch-demo-ready", "Tags": {}, "MaxBatches": 5})
    assert status == 400 and "/MaxBatches" in [d["path"] for d in body["results"][0]["error"]["details"]]


def test_a_tag_selector_imm_refuses_is_rejected_with_imms_code(invoke, emu, fleet):
    emu.faults.inject("ListBatches", "error", status=400, code="InvalidArgument", message="TagSelector is invalid.")
    status, body, _ = invoke.post(doc(Selector={"TagSelector": "tier=gold"}))
    [result] = body["results"]
    assert status == 422 and result["status"] == "rejected" and result["error"]["code"] == "InvalidArgument"


def test_a_throttled_listing_is_retried_then_not_final(invoke, emu, fleet):
    emu.faults.inject("ListBatches", "throttle", count=None, status=429)
    status, body, _ = invoke.post(doc(Selector={"TagSelector": "tier=silver"}))
    assert status == 429 and body["results"][0]["status"] == "throttled"
    assert emu.calls(action="UpdateBatch") == []


def test_every_updated_result_carries_the_diff_and_so_does_its_log_line(invoke, emu, fleet, capsys):
    before = {b["Id"]: b for b in emu.imm.list_batches(FLEET)}
    result = invoke.direct(doc(Selector={"TagSelector": "tier=silver"}, Tags={"tier": "silver", "owner": "x"}))
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"outcome"' in line]
    for r, line in zip(result["results"], lines, strict=True):
        expected = {
            "Actions": {"from": before[r["batch_id"]]["Actions"], "to": NEW_ACTIONS},
            "Tags": {"from": {"tier": "silver"}, "to": {"tier": "silver", "owner": "x"}},
        }
        assert r["diff"] == expected and line["diff"] == expected and line["batch_id"] == r["batch_id"]


def test_a_single_id_update_after_a_precheck_carries_its_diff(invoke, emu):
    before = emu.imm.get_batch(PROJECT, "batch-demo-ready")["Tags"]
    [result] = invoke.direct({"ProjectName": PROJECT, "Id": "batch-demo-ready", "Tags": {"new": "1"}})["results"]
    assert result["status"] == "updated" and result["diff"] == {"Tags": {"from": before, "to": {"new": "1"}}}


def test_documents_for_the_same_batch_keep_their_order_across_selector_and_id(invoke, emu, fleet):
    target = fleet["silver"][0]
    bulk = [
        doc(Selector={"TagSelector": "tier=silver"}, Tags={"step": "1"}),
        {"ProjectName": FLEET, "Id": target, "Tags": {"step": "2"}},
    ]
    invoke.direct(bulk)
    assert emu.imm.get_batch(FLEET, target)["Tags"] == {"step": "2"}  # the later document wins
    assert emu.imm.get_batch(FLEET, fleet["silver"][1])["Tags"] == {"step": "1"}
