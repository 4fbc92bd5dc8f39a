"""OSS trigger through handler.handler: the uploaded object is read from the emulator's OSS with the role's keys."""

from __future__ import annotations

import json
import logging
import time
import tracemalloc
from urllib.parse import unquote, unquote_plus

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imm_batch_updater.app import DeliveryIncomplete
from imm_batch_updater.config import Settings
from imm_batch_updater.context import EndpointUnknown, endpoint
from tests.conftest import FAILED, PROJECT, READY, StsKey, examples, fc_context
from tests.triggers.events import DOC, oss_event, oss_record, pointer, run, statuses

BUCKET = "demo-bucket"
BULK = json.dumps([DOC, {**DOC, "Id": FAILED, "Resume": True}]).encode()


def upload(emu, key: str, data: bytes = BULK) -> str:
    return emu.oss.put_object(BUCKET, key, data).etag


@pytest.mark.parametrize(
    ("stored", "encoded"),
    [
        ("requests/a.json", "requests/a.json"),
        ("requests/with space.json", "requests/with+space.json"),  # form encoding
        ("requests/with space.json", "requests/with%20space.json"),  # percent encoding
        ("requests/a+b.json", "requests/a%2Bb.json"),  # a literal plus, encoded
        ("requests/a+b.json", "requests/a+b.json"),  # a literal plus left as is: found on the second reading
        ("requests/中文 ü.json", "requests/%E4%B8%AD%E6%96%87+%C3%BC.json"),
        ("requests/100%.json", "requests/100%.json"),  # a stray % is kept by every reading
        ("requests/a%20b.json", "requests/a%20b.json"),  # not encoded at all: the raw key is the last reading
    ],
)
def test_upload_is_applied_with_the_decoded_key(invoke, emu, stored, encoded):
    etag = upload(emu, stored)
    result = run(invoke, oss_event(oss_record(BUCKET, encoded, len(BULK), etag=etag)))
    assert statuses(result) == ["updated", "updated"] and result["results"][1]["resumed"] is True
    assert result["results"][0]["message_id"] == f"oss://{BUCKET}/{stored}@{etag}"
    assert emu.imm.get_batch(PROJECT, READY)["Tags"] == {"via": "trigger"}


def test_a_present_object_costs_one_get(invoke, emu):
    # With the eTag the event carries: the object found is the upload. (One overwritten since, whose ETag is no
    # longer the event's, has its other readings looked up too: see test_oss_eventbridge.)
    etag = upload(emu, "requests/with space.json")
    run(invoke, oss_event(oss_record(BUCKET, "requests/with+space.json", len(BULK), etag=etag)))
    assert len(emu.calls(action="GetObject")) == 1


def test_one_event_with_several_records(invoke, emu):
    upload(emu, "requests/1.json", json.dumps(DOC).encode())
    upload(emu, "requests/2.json", json.dumps({**DOC, "Id": FAILED}).encode())
    records = [oss_record(BUCKET, "requests/1.json", etag="E1"), oss_record(BUCKET, "requests/2.json", etag="E2")]
    result = run(invoke, oss_event(*records))
    assert statuses(result) == ["updated", "updated"]


def test_missing_object_and_bucket_are_invalid(invoke, emu):
    result = run(invoke, oss_event(oss_record(BUCKET, "requests/gone.json"), oss_record("no-bucket", "x.json")))
    assert statuses(result) == ["invalid", "invalid"]
    assert [r["error"]["code"] for r in result["results"]] == ["NoSuchKey", "NoSuchBucket"]
    assert [pointer(result, 0), pointer(result, 1)] == ["/events/0/oss/object/key", "/events/1/oss/bucket/name"]
    assert emu.calls(service="imm") == []


def test_a_deleted_object_whose_encoded_key_is_long_is_still_no_such_key(invoke, emu):
    # 300 "é" are 600 bytes stored, but 1,800 characters once percent-encoded in the event: the last reading of the
    # key (as sent) is a name OSS refuses with 400 InvalidObjectName, never NoSuchKey (OSS object naming rules,
    # emulator/oss.py), so it is not requested and the deleted object stays `invalid`, not `rejected`.
    encoded = "requests/" + "%C3%A9" * 300 + ".json"
    result = run(invoke, oss_event(oss_record(BUCKET, encoded)))
    assert statuses(result) == ["invalid"] and result["results"][0]["error"]["code"] == "NoSuchKey"
    assert pointer(result, 0) == "/events/0/oss/object/key"
    assert len(emu.calls(action="GetObject")) == 1  # the one decoded reading


@pytest.mark.parametrize("key", ["/requests/a.json", "\\requests.json", "k" * 1024])
def test_a_key_oss_can_never_hold_is_invalid_without_a_read(invoke, emu, key):
    # A leading / or \, or over 1,023 long, whichever way the key is read: no object can have that name.
    result = run(invoke, oss_event(oss_record(BUCKET, key)))
    assert statuses(result) == ["invalid"] and result["results"][0]["error"]["code"] == "InvalidObjectName"
    assert pointer(result, 0) == "/events/0/oss/object/key"
    assert emu.calls(service="oss") == [] and emu.calls(service="imm") == []


def test_a_key_whose_decoded_readings_oss_cannot_hold_is_read_as_sent(invoke, emu):
    etag = upload(emu, "%2Frequests%2Fa.json")  # a literal name: its decoded reading would start with /
    result = run(invoke, oss_event(oss_record(BUCKET, "%2Frequests%2Fa.json", len(BULK), etag=etag)))
    assert statuses(result) == ["updated", "updated"]
    assert [c.status for c in emu.calls(action="GetObject")] == [200]  # no InvalidObjectName on the way


def test_a_name_oss_refuses_anyway_is_invalid_not_rejected(invoke, emu):
    # 400 InvalidObjectName for a name within 1,023 characters (OSS's naming page counts bytes, its error pages
    # characters): reading again can never succeed, so it is the event's fault like NoSuchKey, not a refusal.
    emu.faults.inject("GetObject", "error", count=None, service="oss", status=400, code="InvalidObjectName")
    result = run(invoke, oss_event(oss_record(BUCKET, "requests/" + "中" * 400 + ".json")))
    assert statuses(result) == ["invalid"] and result["results"][0]["error"]["code"] == "InvalidObjectName"
    assert pointer(result, 0) == "/events/0/oss/object/key"


def test_a_missing_object_is_no_such_key_even_when_a_later_reading_is_a_name_oss_refuses(invoke, emu):
    # The likeliest reading ("a b.json") is looked up and missing; the next one ("a+b.json", a literal +) is a
    # name OSS refuses anyway (400 InvalidObjectName: its naming page counts bytes). The object is missing: the
    # outcome names the likelier reading's NoSuchKey, not a refusal of a reading that was only a guess.
    emu.faults.inject("GetObject", "error", count=1, service="oss", status=404, code="NoSuchKey")
    emu.faults.inject("GetObject", "error", count=1, service="oss", status=400, code="InvalidObjectName")
    result = run(invoke, oss_event(oss_record(BUCKET, "requests/a+b.json")))
    assert statuses(result) == ["invalid"] and result["results"][0]["error"]["code"] == "NoSuchKey"
    assert pointer(result, 0) == "/events/0/oss/object/key"
    assert [c.status for c in emu.calls(action="GetObject")] == [404, 400]


@pytest.mark.parametrize("key", [".", ".."])
def test_an_object_named_dot_or_dot_dot_cannot_be_requested_and_is_invalid_not_rejected(invoke, emu, key):
    # OSS can hold them (1 to 1,023 long, no leading / or \\), but no HTTP client sends them: the key is one path
    # segment, and requests/urllib3 remove "." and ".." segments (RFC 3986, 5.2.4), so the read went to the
    # bucket's root, signed for the object, and came back 403 SignatureDoesNotMatch: `rejected`, "check
    # oss:GetObject for the role", for a role that has it. No retry and no permission can change that.
    etag = upload(emu, key)
    result = run(invoke, oss_event(oss_record(BUCKET, key, len(BULK), etag=etag)))
    assert statuses(result) == ["invalid"] and result["results"][0]["error"]["code"] == "InvalidObjectKey"
    assert pointer(result, 0) == "/events/0/oss/object/key"
    assert emu.calls(service="oss") == [] and emu.calls(service="imm") == []


def test_a_key_whose_encoded_form_is_a_dot_segment_is_read_as_sent(invoke, emu):
    etag = upload(emu, "%2E%2E")  # a literal name; its decoded reading ".." cannot be requested
    result = run(invoke, oss_event(oss_record(BUCKET, "%2E%2E", len(BULK), etag=etag)))
    assert statuses(result) == ["updated", "updated"]
    assert [c.status for c in emu.calls(action="GetObject")] == [200]


def test_oversized_object_is_invalid_without_reading_it(invoke, emu, fn_env):
    fn_env.setenv("OSS_MAX_OBJECT_BYTES", "100")
    upload(emu, "requests/big.json", json.dumps({**DOC, "Tags": {"pad": "x" * 200}}).encode())
    result = run(invoke, oss_event(oss_record(BUCKET, "requests/big.json", size=250)))
    assert statuses(result) == ["invalid"] and result["results"][0]["error"]["code"] == "TooLarge"
    assert "OSS_MAX_OBJECT_BYTES" in result["results"][0]["error"]["message"]
    assert pointer(result) == "/events/0/oss/object/size" and emu.calls(action="GetObject") == []


@pytest.mark.parametrize("size", [10, None])
def test_the_read_is_bounded_when_the_event_size_is_stale_or_missing(invoke, emu, fn_env, size):
    fn_env.setenv("OSS_MAX_OBJECT_BYTES", "100")
    upload(emu, "requests/big.json", json.dumps({**DOC, "Tags": {"pad": "x" * 200}}).encode())
    result = run(invoke, oss_event(oss_record(BUCKET, "requests/big.json", size=size)))
    assert statuses(result) == ["invalid"] and result["results"][0]["error"]["code"] == "TooLarge"
    assert emu.calls(service="imm") == []


def test_a_stale_size_does_not_make_the_function_download_a_huge_object(invoke, emu, fn_env):
    fn_env.setenv("OSS_MAX_OBJECT_BYTES", "1000")
    upload(emu, "requests/huge.json", b" " * (20 * 1024 * 1024))
    event = json.dumps(oss_event(oss_record(BUCKET, "requests/huge.json", size=10))).encode()
    tracemalloc.start()
    try:
        result = invoke.direct(None, raw=event)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result["results"][0]["error"]["code"] == "TooLarge"
    assert peak < 5 * 1024 * 1024, peak  # the read stopped after the limit instead of taking 20 MiB


def test_the_default_object_limit_is_max_body_bytes(invoke, emu, fn_env):
    fn_env.setenv("MAX_BODY_BYTES", "2048")
    result = run(invoke, oss_event(oss_record(BUCKET, "requests/x.json", size=2049)))
    assert result["results"][0]["error"]["code"] == "TooLarge"


def test_access_denied_is_rejected(invoke, emu):
    upload(emu, "secret/x.json")
    emu.oss.deny(BUCKET, "secret/")
    result = run(invoke, oss_event(oss_record(BUCKET, "secret/x.json")))
    assert statuses(result) == ["rejected"] and result["results"][0]["error"]["code"] == "AccessDenied"


@pytest.mark.parametrize("kind", ["internal", "unavailable", "drop"])
def test_oss_5xx_or_network_failure_is_failed_and_raises(invoke, emu, kind):
    upload(emu, "requests/a.json")
    emu.faults.inject("GetObject", kind, count=None)
    with pytest.raises(DeliveryIncomplete, match="failed"):
        run(invoke, oss_event(oss_record(BUCKET, "requests/a.json")))
    assert len(emu.calls(action="GetObject")) == 4  # IMM_MAX_ATTEMPTS (default 4), then the platform's turn
    assert emu.calls(service="imm") == []


def test_an_expired_role_token_fails_for_a_redelivery_with_fresh_keys(invoke, emu, sts, capsys):
    """OSS answers SecurityTokenExpired: `failed` (the platform redelivers, and FC hands the next invocation the
    role's current keys), never a final `rejected`."""
    upload(emu, "requests/a.json")
    event = json.dumps(oss_event(oss_record(BUCKET, "requests/a.json"))).encode()
    emu.keyring.expire(sts.access_key_id)
    with pytest.raises(DeliveryIncomplete, match="failed"):
        invoke.direct(None, raw=event)
    assert {c.status for c in emu.calls(action="GetObject")} == {403} and emu.calls(service="imm") == []
    [line] = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"outcome"' in x]
    assert (line["status"], line["error_code"], line["final"]) == ("failed", "SecurityTokenExpired", False)
    fresh = StsKey()
    emu.keyring.add(fresh.access_key_id, fresh.access_key_secret, fresh.security_token)
    assert statuses(invoke.direct(None, raw=event, context=fc_context(fresh))) == ["updated", "updated"]


def test_a_transient_oss_error_is_retried_within_the_invocation(invoke, emu):
    upload(emu, "requests/a.json")
    emu.faults.inject("GetObject", "unavailable", count=1)
    assert statuses(run(invoke, oss_event(oss_record(BUCKET, "requests/a.json")))) == ["updated", "updated"]
    assert [c.status for c in emu.calls(action="GetObject")] == [503, 200]


def test_a_slow_oss_read_is_cut_at_the_function_timeout(invoke, emu):
    upload(emu, "requests/a.json")
    emu.faults.inject("GetObject", "latency", count=None, seconds=2.5)
    started = time.monotonic()
    with pytest.raises(DeliveryIncomplete):
        invoke.direct(
            None,
            raw=json.dumps(oss_event(oss_record(BUCKET, "requests/a.json"))).encode(),
            context=fc_context(invoke.sts, timeout=2),
        )
    assert time.monotonic() - started < 2  # within context.function.timeout, margin included


def test_removal_and_other_events_are_ignored(invoke, emu):
    event = oss_event(
        oss_record(BUCKET, "requests/a.json", name="ObjectRemoved:DeleteObject"),
        oss_record(BUCKET, "requests/a.json", name="ObjectModified:UpdateObjectMeta"),
    )
    assert run(invoke, event) == {"results": []}
    assert emu.calls() == []


def test_removal_records_next_to_an_upload_are_skipped(invoke, emu):
    etag = upload(emu, "requests/a.json", json.dumps(DOC).encode())
    event = oss_event(
        oss_record(BUCKET, "requests/old.json", name="ObjectRemoved:DeleteObject"),
        oss_record(BUCKET, "requests/a.json", etag=etag, name="ObjectCreated:CompleteMultipartUpload"),
    )
    assert statuses(run(invoke, event)) == ["updated"]


def test_reads_with_the_role_credentials(invoke, emu, sts):
    upload(emu, "requests/a.json")
    run(invoke, oss_event(oss_record(BUCKET, "requests/a.json")))
    [call] = emu.calls(action="GetObject")
    assert call.access_key_id == sts.access_key_id and call.status == 200
    assert call.signing == "OSS4-HMAC-SHA256"  # V4: V1 is deprecated for new OSS users


def test_signs_with_v4_scoped_to_the_records_region(invoke, emu):
    """V1 signatures carry no region; V4 ones do, and the emulator (cn-hangzhou) refuses another signing region."""
    upload(emu, "requests/a.json")
    record = {**oss_record(BUCKET, "requests/a.json"), "region": "cn-shanghai"}
    result = run(invoke, oss_event(record))
    assert statuses(result) == ["rejected"] and result["results"][0]["error"]["code"] == "SignatureDoesNotMatch"


def test_signature_errors_never_log_the_token(invoke, emu, sts, caplog):
    """OSS echoes the string to sign (which holds x-oss-security-token) in SignatureDoesNotMatch; oss2 logs error
    bodies at INFO and request headers at DEBUG. A runtime whose root logger is at DEBUG must still not see them."""
    caplog.set_level(logging.DEBUG)
    upload(emu, "requests/a.json")
    emu.keyring.add(sts.access_key_id, "not-the-secret-the-function-has", sts.security_token)
    result = run(invoke, oss_event(oss_record(BUCKET, "requests/a.json")))
    assert statuses(result) == ["rejected"] and result["results"][0]["error"]["code"] == "SignatureDoesNotMatch"
    assert sts.security_token not in caplog.text and sts.security_token not in json.dumps(result)


# ---- endpoint choice (unit level: no OSS call) ---------------------------------------------------------------------
def oss_url(region: str | None = "cn-hangzhou", **env: str) -> str:
    settings = Settings.from_env(env)
    return endpoint(
        "oss", settings.oss_endpoint, variable="OSS_ENDPOINT", region=region, network=settings.imm_network
    ).url


def test_endpoint_choice():
    assert oss_url() == "https://oss-cn-hangzhou.aliyuncs.com"
    assert oss_url(IMM_NETWORK="vpc") == "https://oss-cn-hangzhou-internal.aliyuncs.com"
    assert oss_url("x", OSS_ENDPOINT="oss-cn-beijing-internal.aliyuncs.com") == (
        "https://oss-cn-beijing-internal.aliyuncs.com"
    )
    assert oss_url("x", OSS_ENDPOINT="http://127.0.0.1:9100") == "http://127.0.0.1:9100"
    with pytest.raises(EndpointUnknown, match="OSS_ENDPOINT or FC_REGION"):
        oss_url(None)


# ---- which events mean a finished object (issue #10) -------------------------------------------------------------
FINISHED = [
    "ObjectCreated:PutObject",
    "ObjectCreated:PostObject",
    "ObjectCreated:CopyObject",
    "ObjectCreated:CompleteMultipartUpload",
]
NOT_FINISHED = [
    "ObjectCreated:InitiateMultipartUpload",  # an upload starts: the key still holds its previous content
    "ObjectCreated:UploadPart",
    "ObjectCreated:UploadPartCopy",
    "ObjectCreated:AppendObject",  # an object still growing
    "ObjectCreated:PutSymlink",
    "ObjectModified:UpdateObjectMeta",
    "ObjectRemoved:DeleteObject",
    "ObjectCreated:SomethingNew",
]


@pytest.mark.parametrize("name", FINISHED)
def test_finished_objects_are_read_and_applied(invoke, emu, name):
    upload(emu, "requests/done.json", json.dumps(DOC).encode())
    result = run(invoke, oss_event(oss_record(BUCKET, "requests/done.json", name=name)))
    assert statuses(result) == ["updated"] and len(emu.calls(service="oss", action="GetObject")) == 1


@pytest.mark.parametrize("name", NOT_FINISHED)
def test_upload_progress_and_other_events_are_never_read(invoke, emu, name):
    upload(emu, "requests/old.json", json.dumps({**DOC, "Tags": {"old": "content"}}).encode())
    result = run(invoke, oss_event(oss_record(BUCKET, "requests/old.json", name=name)))
    assert result == {"results": []}
    assert emu.calls(service="oss") == [] and emu.calls(service="imm") == []


def test_a_region_that_is_not_a_region_id_never_names_a_host():
    for region in ("cn-hangzhou@127.0.0.1:9#", "x.example.com/", "cn hangzhou", "cn_hangzhou", "-cn", "cn-"):
        with pytest.raises(EndpointUnknown, match="not a region id"):
            oss_url(region)
    assert oss_url("CN-Hangzhou") == "https://oss-CN-Hangzhou.aliyuncs.com"  # a host name ignores case


# -- every name, every encoding ---------------------------------------------------------------------------------
_NAME_CHARS = st.characters(blacklist_categories=("Cs",), min_codepoint=1)  # any Unicode scalar value but NUL


@pytest.mark.parametrize("encoding", ["quote", "quote_plus", "as stored"])
def test_any_object_name_in_any_encoding_ends_as_documented(invoke, emu, encoding):
    """Generated names (any Unicode, dots, %, +, spaces, control characters, leading / or \\, over 1,023 long) in
    each encoding an event may use: an object OSS can hold and a request can name is read and applied; "." and ".."
    are `invalid` InvalidObjectKey; a name OSS cannot hold is `invalid` InvalidObjectName, never read; the error
    message never echoes the name (it is only in the message id, as every OSS message id is)."""
    from urllib.parse import quote, quote_plus

    encode = {"quote": lambda k: quote(k, safe="/"), "quote_plus": lambda k: quote_plus(k, safe="/")}
    names = st.one_of(
        st.text(_NAME_CHARS, min_size=1, max_size=40),
        st.sampled_from([".", "..", "a/../b", "./a", "%2E%2E", "100%", "a+b c", "/a", "\\a", "//", "k" * 1024]),
        st.builds(lambda p, n: p + n, st.sampled_from(["/", "\\"]), st.text(_NAME_CHARS, max_size=10)),
    )

    @settings(max_examples=examples(60), deadline=None, suppress_health_check=list(HealthCheck))
    @given(name=names)
    def check(name: str) -> None:
        holdable = 0 < len(name) <= 1023 and not name.startswith(("/", "\\"))
        etag = emu.oss.put_object(BUCKET, name, json.dumps(DOC).encode()).etag if holdable else "ETAG"
        sent = encode[encoding](name) if encoding in encode else name
        reads = len(emu.calls(action="GetObject"))
        result = run(invoke, oss_event(oss_record(BUCKET, sent, etag=etag)))
        [outcome] = result["results"]
        if holdable and name not in (".", ".."):
            assert outcome["status"] == "updated", (name, sent, outcome)
            return
        readings = {unquote_plus(sent), unquote(sent), sent}
        dots = readings & {".", ".."}
        requestable = [r for r in readings - dots if 0 < len(r) <= 1023 and not r.startswith(("/", "\\"))]
        if not requestable:
            code = "InvalidObjectKey" if dots else "InvalidObjectName"
            assert (outcome["status"], outcome["error"]["code"]) == ("invalid", code), (name, sent, outcome)
            assert pointer(result, 0) == "/events/0/oss/object/key"
            assert len(emu.calls(action="GetObject")) == reads  # never requested
        else:  # another reading of what was sent names an object that may exist (an earlier example's): looked up
            assert outcome["status"] in ("invalid", "updated"), (name, sent, outcome)
            assert outcome["status"] == "updated" or outcome["error"]["code"] == "NoSuchKey", (name, sent, outcome)
        if len(name) >= 6:
            assert name not in outcome["error"]["message"]

    check()
