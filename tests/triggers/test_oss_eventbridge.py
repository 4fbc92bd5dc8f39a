"""The EventBridge-based OSS trigger through handler.handler: a CloudEvent (`source: acs.oss`) whose `data` is the
native OSS record, read from the emulator's OSS under the native trigger's rules (tests/triggers/test_oss.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imm_batch_updater import strictjson
from imm_batch_updater.sources import Sources
from imm_batch_updater.sources.oss_eventbridge import OssEventBridgeSource
from tests.conftest import FAILED, PROJECT, READY, examples, http_event
from tests.triggers.events import (
    DOC,
    async_destination_record,
    cloud_event,
    oss_cloud_event,
    oss_event,
    oss_record,
    pointer,
    run,
    statuses,
    timer_event,
    topic_event,
)
from tests.triggers.test_oss import BUCKET, BULK, FINISHED, NOT_FINISHED, upload


def test_a_finished_upload_is_read_and_applied(invoke, emu):
    etag = upload(emu, "requests/with space.json")
    result = run(invoke, oss_cloud_event(oss_record(BUCKET, "requests/with+space.json", len(BULK), etag=etag)))
    assert statuses(result) == ["updated", "updated"] and result["results"][1]["resumed"] is True
    # The native trigger's message id for the same upload: the key decoded, the eTag of this version.
    assert result["results"][0]["message_id"] == f"oss://{BUCKET}/requests/with space.json@{etag}"
    assert emu.imm.get_batch(PROJECT, READY)["Tags"] == {"via": "trigger"}
    assert len(emu.calls(action="GetObject")) == 1


def test_a_key_read_another_way_that_names_another_object_is_not_taken_for_the_upload(invoke, emu):
    # Whether EventBridge URL-encodes data.oss.object.key is undocumented, so a literal "+" may arrive as "+": its
    # likeliest reading ("a b.json") is another object when one of that name exists. The event's eTag tells them
    # apart: the upload ("a+b.json") is read and applied, not its neighbour.
    upload(emu, "requests/a b.json", json.dumps({**DOC, "Tags": {"from": "a space"}}).encode())
    etag = upload(emu, "requests/a+b.json", json.dumps({**DOC, "Tags": {"from": "a plus"}}).encode())
    result = run(invoke, oss_cloud_event(oss_record(BUCKET, "requests/a+b.json", etag=etag)))
    assert statuses(result) == ["updated"] and emu.imm.get_batch(PROJECT, READY)["Tags"] == {"from": "a plus"}
    assert result["results"][0]["message_id"] == f"oss://{BUCKET}/requests/a+b.json@{etag}"


def test_an_object_overwritten_since_the_event_is_read_under_the_likeliest_reading(invoke, emu):
    # No reading holds the event's eTag (the object changed since): the likeliest reading's object is applied, as
    # before, after the other readings were looked up.
    upload(emu, "requests/a b.json", json.dumps({**DOC, "Tags": {"from": "a space"}}).encode())
    result = run(invoke, oss_cloud_event(oss_record(BUCKET, "requests/a+b.json", etag="OLDER")))
    assert statuses(result) == ["updated"] and emu.imm.get_batch(PROJECT, READY)["Tags"] == {"from": "a space"}
    assert [c.status for c in emu.calls(action="GetObject")] == [200, 404]


@pytest.mark.parametrize("name", FINISHED)
def test_every_finished_object_type_is_read(invoke, emu, name):
    upload(emu, "requests/done.json", json.dumps(DOC).encode())
    result = run(invoke, oss_cloud_event(oss_record(BUCKET, "requests/done.json", name=name)))
    assert statuses(result) == ["updated"] and len(emu.calls(service="oss", action="GetObject")) == 1


@pytest.mark.parametrize("name", NOT_FINISHED)
def test_upload_progress_and_removals_are_never_read(invoke, emu, name):
    upload(emu, "requests/old.json", json.dumps({**DOC, "Tags": {"old": "content"}}).encode())
    result = run(invoke, oss_cloud_event(oss_record(BUCKET, "requests/old.json", name=name)))
    assert result == {"results": []}
    assert emu.calls(service="oss") == [] and emu.calls(service="imm") == []


def test_an_array_of_events_is_taken_item_by_item(invoke, emu):
    upload(emu, "requests/1.json", json.dumps(DOC).encode())
    upload(emu, "requests/2.json", json.dumps({**DOC, "Id": FAILED}).encode())
    event = [
        oss_cloud_event(oss_record(BUCKET, "requests/1.json", etag="E1"), "ev-1"),
        oss_cloud_event(oss_record(BUCKET, "requests/2.json", etag="E2"), "ev-2"),
    ]
    result = run(invoke, event)
    assert statuses(result) == ["updated", "updated"]
    assert [r["message_id"] for r in result["results"]] == [
        f"oss://{BUCKET}/requests/1.json@E1",
        f"oss://{BUCKET}/requests/2.json@E2",
    ]


def test_a_mixed_array_skips_removals_and_points_at_its_bad_items(invoke, emu):
    etag = upload(emu, "requests/a.json", json.dumps(DOC).encode())
    event: list[Any] = [
        oss_cloud_event(oss_record(BUCKET, "requests/old.json", name="ObjectRemoved:DeleteObject")),
        oss_cloud_event(oss_record(BUCKET, "requests/a.json", etag=etag, name="ObjectCreated:CompleteMultipartUpload")),
        oss_cloud_event(oss_record(BUCKET, "requests/gone.json")),
        {"source": "acs.ecs", "specversion": "1.0", "type": "ecs:Instance:StateChange", "data": {}},
        oss_cloud_event(oss_record(BUCKET, "requests/x.json"), kind="oss:BucketCreated:PutBucket"),
    ]
    result = run(invoke, event)
    assert statuses(result) == ["updated", "invalid", "invalid", "invalid"]
    assert [r["error"]["code"] for r in result["results"][1:]] == ["NoSuchKey", "InvalidEvent", "InvalidEvent"]
    assert [pointer(result, i) for i in (1, 2, 3)] == ["/2/data/oss/object/key", "/3", "/4/type"]
    assert len(emu.calls(action="GetObject")) == 2  # a.json and gone.json; never old.json


def test_the_same_upload_twice_in_one_delivery_is_read_and_applied_once(invoke, emu):
    etag = upload(emu, "requests/a.json", json.dumps(DOC).encode())
    event = oss_cloud_event(oss_record(BUCKET, "requests/a.json", etag=etag))
    result = run(invoke, [event, {**event, "id": "E2"}])
    assert statuses(result) == ["updated", "updated"] and result["results"][1]["duplicate"] is True
    assert len(emu.calls(action="GetObject")) == 1 and len(emu.calls(action="UpdateBatch")) == 1


def test_the_native_record_rules_apply_with_pointers_into_data(invoke, emu, fn_env):
    fn_env.setenv("OSS_MAX_OBJECT_BYTES", "100")
    big = oss_cloud_event(oss_record(BUCKET, "requests/big.json", size=250))
    far = oss_cloud_event({**oss_record(BUCKET, "requests/a.json"), "region": "x.example.com/"})
    bucket = oss_cloud_event(oss_record("no-bucket", "x.json"))
    name = oss_cloud_event(oss_record(BUCKET, "/requests/a.json"))
    result = run(invoke, [big, far, bucket, name])
    assert statuses(result) == ["invalid"] * 4
    codes = [r["error"]["code"] for r in result["results"]]
    assert codes == ["TooLarge", "InvalidRegion", "NoSuchBucket", "InvalidObjectName"]
    paths = [pointer(result, i) for i in range(4)]
    assert paths == ["/0/data/oss/object/size", "/1/data/region", "/2/data/oss/bucket/name", "/3/data/oss/object/key"]
    assert len(emu.calls(action="GetObject")) == 1 and emu.calls(service="imm") == []  # only no-bucket is asked


def test_a_single_event_points_at_data(invoke, emu):
    result = run(invoke, oss_cloud_event(oss_record(BUCKET, "requests/gone.json")))
    assert statuses(result) == ["invalid"] and pointer(result) == "/data/oss/object/key"


@pytest.mark.parametrize(
    ("kind", "where"),
    [
        ("oss:BucketCreated:PutBucket", "/type"),  # the fc3 sample pattern's type: not an object event
        ("oss:ActionTrail:ApiCall", "/type"),
        ("ObjectCreated:PutObject", "/type"),  # no oss: prefix
        ("oss:ObjectCreated:PostObject", "/data/eventName"),  # data.eventName says PutObject
    ],
)
def test_other_oss_types_and_a_type_that_disagrees_with_data_are_invalid(invoke, emu, kind, where):
    upload(emu, "requests/a.json")
    result = run(invoke, oss_cloud_event(oss_record(BUCKET, "requests/a.json"), kind=kind))
    assert statuses(result) == ["invalid"] and result["results"][0]["error"]["code"] == "InvalidEvent"
    assert pointer(result) == where and emu.calls(service="oss") == []


@pytest.mark.parametrize("kind", ["oss:ObjectRemoved:DeleteObject", "oss:ObjectCreated:UploadPart"])
def test_an_upload_whose_type_says_otherwise_is_invalid_not_dropped(invoke, emu, kind):
    # data says a finished upload, type a removal or upload progress: which is meant is never a guess, and the
    # event is reported, not dropped without a result.
    upload(emu, "requests/a.json")
    result = run(invoke, oss_cloud_event(oss_record(BUCKET, "requests/a.json"), kind=kind))
    assert statuses(result) == ["invalid"] and result["results"][0]["error"]["code"] == "InvalidEvent"
    assert pointer(result) == "/data/eventName" and emu.calls(service="oss") == []


@pytest.mark.parametrize(
    ("written", "code"),
    [
        ('"eventName": "ObjectCreated:PutObject", "eventName": "ObjectCreated:PutObject"', "DuplicateKey"),
        ('"eventName": "ObjectCreated:PutObject\\ud800"', "InvalidUnicode"),
    ],
)
def test_a_value_that_can_never_be_sent_in_data_event_name_is_reported_as_such(invoke, emu, written, code):
    event = json.dumps(oss_cloud_event(oss_record(BUCKET, "requests/a.json")))
    raw = event.replace('"eventName": "ObjectCreated:PutObject"', written, 1).encode()
    result = invoke.direct(None, raw=raw)
    assert statuses(result) == ["invalid"] and result["results"][0]["error"]["code"] == code
    assert pointer(result) == "/data/eventName" and "is not the CloudEvent's type" not in str(result)
    assert emu.calls(service="oss") == []


def test_data_given_twice_is_a_duplicate_key_not_a_missing_data_object(invoke, emu):
    event = json.dumps(oss_cloud_event(oss_record(BUCKET, "requests/a.json")))
    raw = event.replace('"data":', '"data": {}, "data":', 1).encode()
    result = invoke.direct(None, raw=raw)
    assert statuses(result) == ["invalid"] and result["results"][0]["error"]["code"] == "DuplicateKey"
    assert pointer(result) == "/data" and emu.calls(service="oss") == []


def test_a_finished_event_without_data_is_invalid(invoke, emu):
    event = {**oss_cloud_event(oss_record(BUCKET, "requests/a.json")), "data": "not an object"}
    result = run(invoke, event)
    assert statuses(result) == ["invalid"] and pointer(result) == "/data"


def test_a_duplicate_key_in_the_envelope_is_invalid(invoke, emu):
    event = json.dumps(oss_cloud_event(oss_record(BUCKET, "requests/a.json")))
    raw = event.replace('"subject":', '"subject": "x", "subject":', 1).encode()
    result = invoke.direct(None, raw=raw)
    assert statuses(result) == ["invalid"] and emu.calls(service="oss") == []


def test_an_eventbridge_event_of_another_source_stays_invalid(invoke, emu):
    event = {"id": "1", "source": "acs.ecs", "specversion": "1.0", "type": "ecs:Instance:StateChange", "data": {}}
    result = run(invoke, event)
    assert statuses(result) == ["invalid"] and emu.calls() == []


def test_a_queue_batch_with_an_oss_event_in_it_stays_the_queues(invoke, emu):
    result = run(invoke, [cloud_event(json.dumps(DOC)), oss_cloud_event(oss_record(BUCKET, "requests/a.json"))])
    assert statuses(result) == ["updated", "invalid"] and pointer(result, 1) == "/1"
    assert "mns:Queue:SendMessage" in result["results"][1]["error"]["message"] and emu.calls(service="oss") == []


# ---- detection: no other trigger's event is ever taken for this one ------------------------------------------------
texts = st.text(max_size=12)
# CloudEvent attributes with random values, and with this trigger's own (a near miss is the likelier thief's bait)
_VALUES = {"source": "acs.oss", "specversion": "1.0", "type": "oss:ObjectCreated:PutObject", "data": {}}
extras = st.dictionaries(
    st.sampled_from(["source", "specversion", "type", "id", "data", "subject"]),
    texts | st.sampled_from(list(_VALUES.values())),
    max_size=4,
) | st.just(dict(_VALUES))


@st.composite
def other_events(draw: st.DrawFn) -> Any:
    """Every other trigger's event, with CloudEvent attributes sprinkled on where that trigger may carry them."""
    doc = json.dumps(DOC)
    kind = draw(st.integers(0, 7))
    if kind == 0:  # an MNS queue CloudEvent, whatever its source says
        return {**cloud_event(doc), **draw(extras), "type": "mns:Queue:SendMessage"}
    if kind == 1:  # an MNS queue batch push, an OSS CloudEvent or not among its items
        items = [cloud_event(doc, f"M{i}") for i in range(draw(st.integers(1, 3)))]
        if draw(st.booleans()):
            items.insert(draw(st.integers(0, len(items))), oss_cloud_event(oss_record(BUCKET, "k.json")))
        return items
    if kind == 2:  # an MNS topic message in JSON format: the publisher's attributes are merged at the top
        return topic_event(doc, **{**draw(extras), "source": "acs.oss", "specversion": "1.0"})
    if kind == 3:  # an async-destination record
        return {**async_destination_record(doc), **draw(extras)}
    if kind == 4:  # an HTTP event whose body is an OSS CloudEvent
        return json.loads(http_event(body=json.dumps(oss_cloud_event(oss_record(BUCKET, "k.json")))))
    if kind == 5:  # the native OSS trigger
        return oss_event(oss_record(BUCKET, draw(texts) or "k"))
    if kind == 6:  # a timer event
        return {**timer_event(doc), **draw(extras)}
    # another EventBridge source's CloudEvent
    source = draw(texts.filter(lambda s: s != "acs.oss"))
    return {"id": "1", "source": source, "specversion": "1.0", "type": draw(texts), "data": {}}


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=other_events())
def test_events_of_other_triggers_are_never_taken_for_it(event):
    source = Sources().detect(strictjson.decode(json.dumps(event)))
    assert not isinstance(source, OssEventBridgeSource), event


def test_a_value_that_can_never_be_sent_inside_data_fails_only_that_event(invoke, emu):
    etag = upload(emu, "requests/a.json", json.dumps(DOC).encode())
    good = oss_cloud_event(oss_record(BUCKET, "requests/a.json", etag=etag), "ev-1")
    bad = json.dumps(oss_cloud_event(oss_record(BUCKET, "requests/b.json"), "ev-2"))
    bad = bad.replace('"eventSource":', '"eventSource": "x", "eventSource":', 1)  # a duplicate key inside data
    raw = f"[{json.dumps(good)}, {bad}]".encode()
    result = invoke.direct(None, raw=raw)
    assert statuses(result) == ["updated", "invalid"]
    assert [c.status for c in emu.calls(action="GetObject")] == [200]  # b.json is never asked for


# ---- generated event shapes: every item ends as documented -----------------------------------------------------
_TYPES = [f"oss:{n}" for n in FINISHED + NOT_FINISHED] + ["oss:BucketCreated:PutBucket", "ObjectCreated:PutObject"]
_NAMES: list[Any] = [*FINISHED, *NOT_FINISHED, "", None, 5, ["ObjectCreated:PutObject"]]


@st.composite
def oss_items(draw: st.DrawFn, i: int) -> Any:
    """Item `i` of an array: an OSS CloudEvent whose `type`, `data.eventName` and `data` are drawn apart (so they
    agree or not), now and then something else."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from([None, 1, "x", [], {"source": "acs.oss"}, cloud_event(json.dumps(DOC))]))
    record = oss_record(BUCKET, f"requests/p{i}.json", etag=f"E{i}")
    event = oss_cloud_event(record, f"ev-{i}", kind=draw(st.sampled_from([*_TYPES, None, 7])))
    if event["type"] is None:
        del event["type"]
    name = draw(st.sampled_from(_NAMES))
    record["eventName"] = name if name is not None or draw(st.booleans()) else record.pop("eventName")
    if draw(st.integers(0, 5)) == 0:
        event["data"] = draw(st.sampled_from([None, "x", 3, [record]]))
    return event


def test_every_item_of_a_generated_array_is_read_ignored_or_invalid_as_documented(invoke, emu):
    """An item is read exactly when its type is a finished object's and data.eventName is that type without oss:;
    ignored (no result, no read) only when both name the same unfinished object event; else one `invalid` result
    pointing into it. Nothing is lost, nothing read that should not be, never an exception."""
    for i in range(4):
        emu.oss.put_object(BUCKET, f"requests/p{i}.json", json.dumps(DOC).encode())

    @settings(max_examples=examples(150), deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.integers(1, 4).flatmap(lambda n: st.tuples(*(oss_items(i) for i in range(n)))))
    def check(items: tuple[Any, ...]) -> None:
        event = list(items) if len(items) > 1 else items[0]
        if not Sources().detect(strictjson.decode(json.dumps(event))).name == "oss_eventbridge":
            return  # no OSS CloudEvent in it: another trigger's (tested elsewhere)
        reads = len(emu.calls(action="GetObject"))
        result = run(invoke, event)["results"]
        expected: list[tuple[int, str]] = []
        for i, item in enumerate(items):
            kind = item.get("type") if isinstance(item, dict) else None
            data = item.get("data") if isinstance(item, dict) else None
            name = data.get("eventName") if isinstance(data, dict) else None
            oss = isinstance(item, dict) and item.get("source") == "acs.oss" and "specversion" in item
            agree = oss and isinstance(kind, str) and isinstance(name, str) and kind == f"oss:{name}"
            if agree and name not in FINISHED and kind.startswith("oss:Object"):
                continue  # an unfinished object event, as data says too: ignored
            expected.append((i, "updated" if agree and name in FINISHED else "invalid"))
        assert [r["status"] for r in result] == [s for _, s in expected], (items, result)
        base = (lambda i: f"/{i}") if len(items) > 1 else (lambda i: "")
        for (i, status), r in zip(expected, result, strict=True):
            if status == "invalid":
                path = r["error"]["details"][0]["path"]
                assert path == base(i) or path.startswith(base(i) + "/"), (i, items[i], r)
            else:
                assert r["message_id"] == f"oss://{BUCKET}/requests/p{i}.json@E{i}"
        assert len(emu.calls(action="GetObject")) - reads == sum(s == "updated" for _, s in expected)

    check()
