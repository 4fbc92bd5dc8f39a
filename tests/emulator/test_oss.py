"""The OSS part of the emulator, driven by the real oss2 client over HTTP (V1 and V4 signatures, STS)."""

from __future__ import annotations

import hashlib
import itertools
import os
import threading
import xml.etree.ElementTree as ET

import oss2
import pytest
from oss2 import exceptions as oss_errors

from emulator import Emulator
from emulator.oss import OssService, crc64
from emulator.server import Keyring

AK, SECRET = "oss-test-ak", "oss-test-secret"
STS_AK, STS_SECRET, STS_TOKEN = "STS.oss-test", "sts-secret", "sts-token-value"
REGION = "cn-hangzhou"
_names = itertools.count()


@pytest.fixture(scope="module")
def oss_emu():
    emu = Emulator(seed=None, access_key_id=AK, access_key_secret=SECRET, region=REGION)
    emu.keyring.add(STS_AK, STS_SECRET, STS_TOKEN)
    emu.start()
    yield emu
    emu.stop()


@pytest.fixture
def bucket_name(oss_emu) -> str:
    """A fresh, existing bucket per test, so module-scoped emulator state never leaks between tests."""
    name = f"test-bucket-{next(_names)}"
    oss_emu.oss.create_bucket(name)
    return name


AUTHS = {
    "v1": lambda: oss2.Auth(AK, SECRET),
    "v4": lambda: oss2.AuthV4(AK, SECRET),
    "sts-v1": lambda: oss2.StsAuth(STS_AK, STS_SECRET, STS_TOKEN),
    "sts-v4": lambda: oss2.StsAuth(STS_AK, STS_SECRET, STS_TOKEN, auth_version="v4"),
}


def bucket(emu: Emulator, name: str, auth=None) -> oss2.Bucket:
    # region= is required for V4 and harmless for V1; an IP endpoint makes oss2 use path style.
    return oss2.Bucket(auth or oss2.Auth(AK, SECRET), emu.url, name, region=REGION)


def error_xml(err: oss_errors.OssError) -> dict[str, str]:
    root = ET.fromstring(err.body)  # noqa: S314 - our own emulator's answer
    assert root.tag == "Error"
    return {child.tag: child.text or "" for child in root}


# -- round trips ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("auth", sorted(AUTHS))
def test_put_get_head_delete_round_trip(oss_emu, bucket_name, auth):
    b = bucket(oss_emu, bucket_name, AUTHS[auth]())
    data = b'{"ProjectName":"p","Id":"b"}'
    put = b.put_object("docs/update.json", data, headers={"Content-Type": "application/json", "x-oss-meta-who": "t"})
    md5 = hashlib.md5(data, usedforsecurity=False).hexdigest().upper()
    assert put.status == 200
    assert put.etag == md5  # oss2 strips the quotes of the ETag header
    assert put.crc == crc64(data)  # oss2 also checked it against its own CRC (enable_crc)

    got = b.get_object("docs/update.json")
    assert got.read() == data
    assert got.headers["ETag"] == f'"{md5}"'
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["x-oss-meta-who"] == "t"
    assert got.content_length == len(data)
    assert got.last_modified > 0

    head = b.head_object("docs/update.json")
    assert (head.content_length, head.etag) == (len(data), md5)
    meta = b.get_object_meta("docs/update.json")
    assert meta.content_length == len(data)
    assert b.object_exists("docs/update.json")

    assert oss_emu.oss.objects(bucket_name) == {"docs/update.json": data}
    assert oss_emu.oss.head_object(bucket_name, "docs/update.json").etag == md5

    assert b.delete_object("docs/update.json").status == 204
    assert not b.object_exists("docs/update.json")
    assert oss_emu.oss.get_object(bucket_name, "docs/update.json") is None
    assert b.delete_object("docs/update.json").status == 204  # deleting a missing key succeeds, as on OSS


def test_oss2_uses_path_style_for_an_ip_endpoint(oss_emu, bucket_name):
    bucket(oss_emu, bucket_name).put_object("a b/c.json", b"{}")
    record = oss_emu.calls(action="PutObject", service="oss")[-1]
    # The key is percent-encoded with safe="" (oss2.api._UrlMaker): "/" inside the key is %2F.
    assert record.path == f"/{bucket_name}/a%20b%2Fc.json"
    assert record.access_key_id == AK


SPECIAL_KEYS = [
    "with space.json",
    "plus+sign.json",
    "percent%20literal.json",
    "中文/文档 1.json",
    "ключ/emoji-😀.json",
    "q?x=1&y=2#frag.json",
    "tilde~star*quote'paren(1).json",
    "semi;colon,comma:@$!.json",
    "a//double/slash/.json",
]


@pytest.mark.parametrize("auth", ["v1", "v4"])
def test_special_character_keys_round_trip(oss_emu, bucket_name, auth):
    b = bucket(oss_emu, bucket_name, AUTHS[auth]())
    for i, key in enumerate(SPECIAL_KEYS):
        payload = f"doc {i}".encode()
        b.put_object(key, payload)
        assert b.get_object(key).read() == payload, key
        assert b.object_exists(key), key
    assert oss_emu.oss.objects(bucket_name) == {k: f"doc {i}".encode() for i, k in enumerate(SPECIAL_KEYS)}


def test_keys_put_by_the_test_api_are_readable_through_oss2(oss_emu, bucket_name):
    obj = oss_emu.oss.put_object(bucket_name, "in/ü +%.json", b"[1]", content_type="application/json")
    assert obj.size == 3 and obj.etag == hashlib.md5(b"[1]", usedforsecurity=False).hexdigest().upper()
    got = bucket(oss_emu, bucket_name).get_object("in/ü +%.json")
    assert got.read() == b"[1]" and got.headers["Content-Type"] == "application/json"


def test_range_reads(oss_emu, bucket_name):
    b = bucket(oss_emu, bucket_name)
    b.put_object("r.txt", b"0123456789")
    part = b.get_object("r.txt", byte_range=(2, 5))
    assert part.status == 206 and part.read() == b"2345"
    assert part.headers["Content-Range"] == "bytes 2-5/10"
    assert b.get_object("r.txt", byte_range=(None, 3)).read() == b"789"  # the last 3 bytes
    assert b.get_object("r.txt", byte_range=(7, None)).read() == b"789"
    whole = b.get_object("r.txt", byte_range=(50, 60))  # unsatisfiable: OSS serves the whole object
    assert whole.status == 200 and whole.read() == b"0123456789"
    # A range reaching past the last byte is out of range too, by default: "Range: bytes=0-1000 (1,000-byte object):
    # End byte exceeds object size - full object returned, 200 OK", and "bytes=-2000" is out of range as well
    # (https://www.alibabacloud.com/help/en/oss/how-to-obtain-oss-resources-by-segmenting-http-range-requests).
    for byte_range in ((2, 10), (0, 60), (None, 11)):
        whole = b.get_object("r.txt", byte_range=byte_range)
        assert (whole.status, whole.read()) == (200, b"0123456789"), byte_range
        assert "Content-Range" not in whole.headers
    tail = b.get_object("r.txt", byte_range=(2, 10), headers={"x-oss-range-behavior": "standard"})
    assert (tail.status, tail.read(), tail.headers["Content-Range"]) == (206, b"23456789", "bytes 2-9/10")
    with pytest.raises(oss_errors.ServerError) as err:
        b.get_object("r.txt", byte_range=(50, 60), headers={"x-oss-range-behavior": "standard"})
    assert (err.value.status, err.value.code) == (416, "InvalidRange")


def test_content_md5_is_checked(oss_emu, bucket_name):
    b = bucket(oss_emu, bucket_name)
    good = oss2.utils.content_md5(b"abc")
    assert b.put_object("ok.txt", b"abc", headers={"Content-MD5": good}).status == 200
    with pytest.raises(oss_errors.InvalidDigest):
        b.put_object("bad.txt", b"abc", headers={"Content-MD5": oss2.utils.content_md5(b"abd")})
    assert "bad.txt" not in oss_emu.oss.objects(bucket_name)


def test_forbid_overwrite(oss_emu, bucket_name):
    b = bucket(oss_emu, bucket_name)
    b.put_object("once.txt", b"1")
    with pytest.raises(oss_errors.ServerError) as err:
        b.put_object("once.txt", b"2", headers={"x-oss-forbid-overwrite": "true"})
    assert (err.value.status, err.value.code) == (409, "FileAlreadyExists")
    assert oss_emu.oss.get_object(bucket_name, "once.txt") == b"1"


# -- errors --------------------------------------------------------------------------------------------------------
def test_no_such_key_and_bucket(oss_emu, bucket_name):
    b = bucket(oss_emu, bucket_name)
    with pytest.raises(oss_errors.NoSuchKey) as err:
        b.get_object("missing.json")
    details = error_xml(err.value)
    assert details["Code"] == "NoSuchKey" and details["Key"] == "missing.json"
    assert details["RequestId"] == err.value.request_id  # x-oss-request-id header and body agree
    assert details["HostId"] and details["Message"]

    # HEAD has no body: oss2 reads the error from x-oss-err, so it can still tell NoSuchKey from NoSuchBucket.
    with pytest.raises(oss_errors.NoSuchKey):
        b.head_object("missing.json")
    assert b.object_exists("missing.json") is False

    ghost = bucket(oss_emu, "no-such-bucket-here")
    with pytest.raises(oss_errors.NoSuchBucket) as err:
        ghost.get_object("x.json")
    assert err.value.status == 404 and error_xml(err.value)["BucketName"] == "no-such-bucket-here"
    with pytest.raises(oss_errors.NoSuchBucket):
        ghost.object_exists("x.json")
    with pytest.raises(oss_errors.NoSuchBucket):
        ghost.put_object("x.json", b"{}")


@pytest.mark.parametrize(
    "key, message",
    [
        ("/leading-slash.json", "The specified object is not valid."),
        ("\\leading-backslash.json", "The specified object is not valid."),
        ("k" * 1024, "The Length of Object name must be less than 1024"),
    ],
)
def test_a_name_oss_can_never_hold_is_invalid_object_name_not_no_such_key(oss_emu, bucket_name, key, message):
    # OSS's object naming rules: no leading / or \, at most 1,023 long; breaking them is 400 InvalidObjectName
    # (https://www.alibabacloud.com/help/en/oss/support/http-400-status-code, .../support/0016-00000005).
    b = bucket(oss_emu, bucket_name)
    for call in (lambda: b.get_object(key), lambda: b.put_object(key, b"{}"), lambda: b.head_object(key)):
        with pytest.raises(oss_errors.ServerError) as err:
            call()
        assert (err.value.status, err.value.code) == (400, "InvalidObjectName")
    with pytest.raises(oss_errors.ServerError) as err:
        b.get_object(key)
    assert error_xml(err.value)["Message"] == message
    assert oss_emu.oss.objects(bucket_name) == {}
    b.put_object("k" * 1023, b"{}")  # the longest name OSS takes
    assert b.get_object("k" * 1023).read() == b"{}"
    with pytest.raises(ValueError, match="InvalidObjectName"):
        oss_emu.oss.put_object(bucket_name, key, b"{}")  # nor can a test store one


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_unknown_access_key(oss_emu, bucket_name, version):
    auth = oss2.Auth("nobody", SECRET) if version == "v1" else oss2.AuthV4("nobody", SECRET)
    with pytest.raises(oss_errors.ServerError) as err:
        bucket(oss_emu, bucket_name, auth).get_object("x")
    assert (err.value.status, err.value.code) == (403, "InvalidAccessKeyId")


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_wrong_secret(oss_emu, bucket_name, version):
    auth = oss2.Auth(AK, "wrong") if version == "v1" else oss2.AuthV4(AK, "wrong")
    with pytest.raises(oss_errors.SignatureDoesNotMatch) as err:
        bucket(oss_emu, bucket_name, auth).put_object("x.json", b"{}")
    assert err.value.status == 403
    assert "StringToSign" in error_xml(err.value)  # like OSS: what the server signed, to debug a signer
    assert oss_emu.oss.objects(bucket_name) == {}


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_sts_key_needs_its_token(oss_emu, bucket_name, version):
    oss_emu.oss.put_object(bucket_name, "doc.json", b"{}")
    without = oss2.Auth(STS_AK, STS_SECRET) if version == "v1" else oss2.AuthV4(STS_AK, STS_SECRET)
    wrong = oss2.StsAuth(STS_AK, STS_SECRET, "another-token", auth_version=version)
    # Without its token an STS key is unknown to OSS: "The OSS Access Key Id you provided does not exist in our
    # records", cause "The SecurityToken is missing from the request" (emulator/oss.py, OssService._secret_of).
    for auth, code in ((without, "InvalidAccessKeyId"), (wrong, "InvalidSecurityToken")):
        with pytest.raises(oss_errors.ServerError) as err:
            bucket(oss_emu, bucket_name, auth).get_object("doc.json")
        assert (err.value.status, err.value.code) == (403, code)
    right = oss2.StsAuth(STS_AK, STS_SECRET, STS_TOKEN, auth_version=version)
    assert bucket(oss_emu, bucket_name, right).get_object("doc.json").read() == b"{}"


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_a_permanent_key_sent_with_a_token_is_refused_like_oss_does(oss_emu, bucket_name, version):
    # A security token makes OSS read the request as an STS one, and a permanent AccessKey ID is no STS key:
    # EC 0002-00000002 (https://help.aliyun.com/zh/oss/support/0002-00000002), InvalidAccessKeyId, cause "the
    # request uses the parent AccessKey ID instead of the STS-issued one" (emulator/oss.py has the sources).
    oss_emu.oss.put_object(bucket_name, "doc.json", b"{}")
    with pytest.raises(oss_errors.ServerError) as err:
        bucket(oss_emu, bucket_name, oss2.StsAuth(AK, SECRET, "a-token", auth_version=version)).get_object("doc.json")
    assert (err.value.status, err.value.code) == (403, "InvalidAccessKeyId")
    assert bucket(oss_emu, bucket_name, AUTHS[version]()).get_object("doc.json").read() == b"{}"


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_an_expired_sts_key_is_refused_like_oss_does(oss_emu, bucket_name, version):
    oss_emu.oss.put_object(bucket_name, "doc.json", b"{}")
    oss_emu.keyring.add("STS.oss-expiring", "exp-secret", "exp-token")
    auth = oss2.StsAuth("STS.oss-expiring", "exp-secret", "exp-token", auth_version=version)
    assert bucket(oss_emu, bucket_name, auth).get_object("doc.json").read() == b"{}"
    oss_emu.keyring.expire("STS.oss-expiring")
    with pytest.raises(oss_errors.ServerError) as err:
        bucket(oss_emu, bucket_name, auth).get_object("doc.json")
    assert (err.value.status, err.value.code) == (403, "SecurityTokenExpired")
    oss_emu.keyring.remove("STS.oss-expiring")
    assert bucket(oss_emu, bucket_name).get_object("doc.json").read() == b"{}"  # permanent keys never expire


def test_a_presigned_url_is_refused_and_logged_without_its_signature(oss_emu, bucket_name):
    from urllib.parse import parse_qs, urlsplit

    import requests

    oss_emu.oss.put_object(bucket_name, "doc.json", b"{}")
    url = bucket(oss_emu, bucket_name, AUTHS["v1"]()).sign_url("GET", "doc.json", 60)
    signature = parse_qs(urlsplit(url).query)["Signature"][0]
    assert requests.get(url, timeout=5).status_code == 403  # the emulator takes header signatures only
    call = oss_emu.calls(action="GetObject")[-1]
    assert call.status == 403 and call.signing == "OSS" and f"OSSAccessKeyId={AK}" in call.query
    assert "Signature=%2A%2A%2A" in call.query and signature not in repr(call)


def test_v4_scope_must_name_the_emulator_region(oss_emu, bucket_name):
    b = oss2.Bucket(oss2.AuthV4(AK, SECRET), oss_emu.url, bucket_name, region="cn-shanghai")
    with pytest.raises(oss_errors.SignatureDoesNotMatch) as err:
        b.get_object("x")
    assert "region" in err.value.message


def test_anonymous_requests_are_denied(oss_emu, bucket_name):
    oss_emu.oss.put_object(bucket_name, "public.json", b"{}")
    with pytest.raises(oss_errors.AccessDenied):
        bucket(oss_emu, bucket_name, oss2.AnonymousAuth()).get_object("public.json")


def test_request_time_too_skewed(oss_emu, bucket_name, monkeypatch):
    monkeypatch.setattr(oss2.utils, "http_date", lambda *a: "Mon, 01 Jan 2024 00:00:00 GMT")
    with pytest.raises(oss_errors.ServerError) as err:
        bucket(oss_emu, bucket_name).get_object("x")
    assert (err.value.status, err.value.code) == (403, "RequestTimeTooSkewed")


def test_denied_prefix(oss_emu, bucket_name):
    b = bucket(oss_emu, bucket_name)
    oss_emu.oss.put_object(bucket_name, "secret/doc.json", b"{}")
    oss_emu.oss.put_object(bucket_name, "open/doc.json", b"{}")
    oss_emu.oss.deny(bucket_name, "secret/")
    with pytest.raises(oss_errors.AccessDenied) as err:
        b.get_object("secret/doc.json")
    assert err.value.status == 403
    with pytest.raises(oss_errors.AccessDenied):
        b.put_object("secret/new.json", b"{}")
    assert b.get_object("open/doc.json").read() == b"{}"
    oss_emu.oss.allow(bucket_name)
    assert b.get_object("secret/doc.json").read() == b"{}"


def test_deny_limited_to_some_actions(oss_emu, bucket_name):
    """A role that may read update documents but not write results."""
    b = bucket(oss_emu, bucket_name)
    oss_emu.oss.deny(bucket_name, actions=["PutObject"])
    oss_emu.oss.put_object(bucket_name, "in.json", b"{}")
    assert b.get_object("in.json").read() == b"{}"
    with pytest.raises(oss_errors.AccessDenied):
        b.put_object("out.json", b"{}")
    oss_emu.oss.allow(bucket_name)


def test_unsupported_operations_fail_loudly(oss_emu, bucket_name):
    with pytest.raises(oss_errors.ServerError) as err:
        bucket(oss_emu, bucket_name).get_object_acl("x.json")
    assert (err.value.status, err.value.code) == (501, "NotImplemented")


def test_action_names_for_the_fault_injector(oss_emu, bucket_name):
    b = bucket(oss_emu, bucket_name)
    before = len(oss_emu.calls(service="oss"))
    b.put_object("k.json", b"{}")
    b.get_object("k.json").read()
    b.head_object("k.json")
    b.get_object_meta("k.json")
    b.delete_object("k.json")
    actions = [r.action for r in oss_emu.calls(service="oss")[before:]]
    assert actions == ["PutObject", "GetObject", "HeadObject", "GetObjectMeta", "DeleteObject"]


def test_injected_faults_use_the_oss_error_format(oss_emu, bucket_name):
    b = bucket(oss_emu, bucket_name)
    b.put_object("f.json", b"{}")
    oss_emu.faults.inject("GetObject", "internal", service="oss")
    with pytest.raises(oss_errors.ServerError) as err:
        b.get_object("f.json")
    assert (err.value.status, err.value.code) == (500, "InternalError")
    oss_emu.faults.inject("HeadObject", "unavailable", service="oss")
    with pytest.raises(oss_errors.ServerError) as err:
        b.head_object("f.json")  # no body on HEAD: the code still arrives, through x-oss-err
    assert (err.value.status, err.value.code) == (503, "ServiceUnavailable")
    assert b.get_object("f.json").read() == b"{}"


# -- in-process API, seed, checksum, concurrency -------------------------------------------------------------------
def test_seed_format():
    service = OssService(Keyring())
    service.load(None)
    assert service.buckets() == []
    service.load(
        {
            "buckets": {
                "demo-bucket": {},
                "docs": {"objects": {"a.txt": "héllo", "u.json": {"Id": "b", "Tags": {"x": 1}}}, "deny": ["x/"]},
            }
        }
    )
    assert service.buckets() == ["demo-bucket", "docs"]
    assert service.objects("docs") == {"a.txt": "héllo".encode(), "u.json": b'{"Id":"b","Tags":{"x":1}}'}
    assert service.head_object("docs", "u.json").content_type == "application/json"
    service.load({"buckets": ["listed"]})
    assert "listed" in service.buckets()


def test_crc64_matches_oss2():
    for data in (b"", b"a", b"123456789", os.urandom(1000)):
        reference = oss2.utils.Crc64(0)
        reference.update(data)
        assert crc64(data) == reference.crc
    assert crc64(b"123456789") == 0x995DC9BBDF1939FA  # the CRC-64/XZ check value


def test_concurrent_clients(oss_emu, bucket_name):
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            b = bucket(oss_emu, bucket_name, AUTHS["v4" if n % 2 else "sts-v1"]())
            for i in range(5):
                key = f"t{n}/doc {i}.json"
                b.put_object(key, f"{n}-{i}".encode())
                assert b.get_object(key).read() == f"{n}-{i}".encode()
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    stored = oss_emu.oss.objects(bucket_name)
    assert len(stored) == 24 * 5
    assert stored["t7/doc 3.json"] == b"7-3"
