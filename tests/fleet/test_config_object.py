"""Schedules from a config object (issue #13, part 5): a timer payload or a direct invocation may be
`{"Source": "oss://bucket/key"}`; the object's documents are applied, read with the role's credentials under the
OSS trigger's rules. Other triggers refuse `Source` as an unknown key."""

from __future__ import annotations

import json

import pytest

from imm_batch_updater.app import DeliveryIncomplete
from tests.conftest import FAILED, PROJECT, READY
from tests.triggers.events import cloud_event, run, timer_event

BUCKET = "config-bucket"
KEY = "schedules/nightly.json"
SOURCE = {"Source": f"oss://{BUCKET}/{KEY}"}
SCHEDULE = [
    {"ProjectName": PROJECT, "Id": READY, "Tags": {"night": "1"}},
    {
        "ProjectName": PROJECT,
        "Id": FAILED,
        "Actions": [{"Name": "doc/convert", "Parameters": ["pages=9"]}],
        "Resume": True,
    },
]


@pytest.fixture
def config_object(emu):
    emu.oss.create_bucket(BUCKET)
    emu.oss.put_object(BUCKET, KEY, json.dumps(SCHEDULE).encode())


def test_a_timer_applies_the_documents_of_its_config_object(invoke, emu, config_object):
    result = run(invoke, timer_event(json.dumps(SOURCE)))
    assert [(r["batch_id"], r["status"], r["index"]) for r in result["results"]] == [
        (READY, "updated", 0),
        (FAILED, "updated", 1),
    ]
    assert result["results"][1]["resumed"] is True
    assert emu.imm.get_batch(PROJECT, READY)["Tags"] == {"night": "1"}
    assert [c.signing for c in emu.calls(service="oss")] == ["OSS4-HMAC-SHA256"]  # read with the role's keys


def test_a_changed_object_changes_the_schedule_without_a_redeploy(invoke, emu, config_object):
    run(invoke, timer_event(json.dumps(SOURCE), when="2026-01-01T00:00:00Z"))
    emu.oss.put_object(BUCKET, KEY, json.dumps({"ProjectName": PROJECT, "Id": READY, "Tags": {"night": "2"}}).encode())
    run(invoke, timer_event(json.dumps(SOURCE), when="2026-01-02T00:00:00Z"))
    assert emu.imm.get_batch(PROJECT, READY)["Tags"] == {"night": "2"}


def test_a_direct_invocation_may_name_a_config_object(invoke, emu, config_object):
    result = invoke.direct(SOURCE)
    assert [r["status"] for r in result["results"]] == ["updated", "updated"]


def test_a_missing_object_is_invalid_at_source(invoke, emu, config_object):
    [result] = run(invoke, timer_event(json.dumps({"Source": f"oss://{BUCKET}/missing.json"})))["results"]
    assert result["status"] == "invalid" and result["error"]["code"] == "NoSuchKey"
    assert result["error"]["details"][0]["path"] == "/Source" and emu.calls(service="imm") == []


def test_a_denied_read_is_rejected(invoke, emu, config_object):
    emu.oss.deny(BUCKET)
    [result] = invoke.direct(SOURCE)["results"]
    assert result["status"] == "rejected" and result["error"]["code"] == "AccessDenied"


def test_an_oss_outage_is_retried_by_the_platform(invoke, emu, config_object):
    emu.faults.inject("GetObject", "unavailable", count=None, service="oss")
    with pytest.raises(DeliveryIncomplete):
        run(invoke, timer_event(json.dumps(SOURCE)))


def test_a_config_object_over_the_limit_is_invalid(invoke, emu, config_object, fn_env):
    fn_env.setenv("OSS_MAX_OBJECT_BYTES", "64")
    [result] = invoke.direct(SOURCE)["results"]
    assert result["status"] == "invalid" and result["error"]["code"] == "TooLarge"


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ({"Source": "s3://bucket/key"}, "/Source"),
        ({"Source": "oss://Bad_Bucket/key"}, "/Source"),
        ({"Source": "oss://config-bucket/"}, "/Source"),
        # Keys OSS can never hold (a leading / or \, over 1,023 long): OSS answers 400 InvalidObjectName, not
        # NoSuchKey, so they are refused before any read (tests/emulator/test_oss.py has the sources).
        ({"Source": "oss://config-bucket//schedules/nightly.json"}, "/Source"),
        ({"Source": "oss://config-bucket/\\schedules/nightly.json"}, "/Source"),
        ({"Source": "oss://config-bucket/" + "k" * 1024}, "/Source"),
        # Names OSS can hold but no HTTP client requests as named (dot segments are removed from the path).
        ({"Source": "oss://config-bucket/."}, "/Source"),
        ({"Source": "oss://config-bucket/.."}, "/Source"),
        ({"Source": 7}, "/Source"),
        ({"Source": f"oss://{BUCKET}/{KEY}", "Id": "x"}, "/Id"),
    ],
)
def test_a_malformed_source_is_invalid(invoke, emu, config_object, document, path):
    [result] = invoke.direct(document)["results"]
    assert result["status"] == "invalid" and result["error"]["details"][0]["path"] == path
    assert emu.calls(service="oss") == []


def test_other_triggers_refuse_source_as_an_unknown_key(invoke, emu, config_object):
    [queued] = run(invoke, cloud_event(json.dumps(SOURCE)))["results"]
    assert queued["status"] == "invalid" and "/Source" in [d["path"] for d in queued["error"]["details"]]
    status, body, _ = invoke.post(SOURCE)
    assert status == 400 and "/Source" in [d["path"] for d in body["results"][0]["error"]["details"]]
    assert emu.calls(service="oss") == []


def test_the_documents_in_a_config_object_may_not_name_another(invoke, emu):
    emu.oss.create_bucket(BUCKET)
    emu.oss.put_object(BUCKET, KEY, json.dumps({"Source": f"oss://{BUCKET}/other.json"}).encode())
    [result] = invoke.direct(SOURCE)["results"]
    assert result["status"] == "invalid" and "/Source" in [d["path"] for d in result["error"]["details"]]
    assert len(emu.calls(service="oss")) == 1


def test_a_config_object_that_is_not_json_is_invalid_without_echoing_its_url(invoke, emu):
    key = "schedules/" + "k" * 900 + ".json"
    emu.oss.create_bucket(BUCKET)
    emu.oss.put_object(BUCKET, key, b"not json")
    [result] = invoke.direct({"Source": f"oss://{BUCKET}/{key}"})["results"]
    assert result["status"] == "invalid" and result["error"]["code"] == "NotJson"
    assert "the Source object" in result["error"]["message"] and "k" * 50 not in json.dumps(result)
    assert emu.calls(service="imm") == []
