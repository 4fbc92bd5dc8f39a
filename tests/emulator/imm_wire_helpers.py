"""Hand-built IMM requests, signed with the SDK's own signer, for cases the SDK never produces by itself.

A stale `x-acs-date`, a replayed nonce, an unknown action or a broken JSON field cannot be made through
`alibabacloud_imm20200930.client.Client`, so these requests are assembled here and signed with
`alibabacloud_tea_openapi.utils.Utils.get_authorization` (the SDK's signer, not the emulator's) to keep the
verifier honest.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from alibabacloud_tea_openapi.utils import Utils
from darabonba.request import DaraRequest


@dataclass
class WireResponse:
    status: int
    headers: dict[str, str]
    raw: bytes

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.raw)


def sdk_sign(method: str, query: dict[str, str], headers: dict[str, str], body: bytes, ak: str, secret: str) -> str:
    request = DaraRequest()
    request.method = method
    request.pathname = "/"
    request.query = dict(query)
    request.headers = dict(headers)
    return Utils.get_authorization(request, "ACS3-HMAC-SHA256", hashlib.sha256(body).hexdigest(), ak, secret)


def imm_call(
    endpoint: str,
    action: str,
    params: dict[str, str] | None = None,
    *,
    in_body: bool = True,
    access_key_id: str = "local-ak",
    access_key_secret: str = "local-secret",
    security_token: str | None = None,
    date: str | None = None,
    nonce: str | None = None,
    version: str = "2020-09-30",
    extra_headers: dict[str, str] | None = None,
    sign: bool = True,
    body_override: bytes | None = None,
    raw_body: bytes | None = None,
) -> WireResponse:
    """Send one IMM RPC call the way the SDK does (form body or query), with any detail overridden.

    `raw_body` sends (and signs) exactly those bytes instead of the encoded `params`, for forms the SDK cannot
    build (bytes that are not UTF-8, a name given twice); `body_override` is sent unsigned.
    """
    params = params or {}
    body = urlencode(sorted(params.items())).encode() if in_body and params else b""
    if raw_body is not None:
        body = raw_body
    query = {} if in_body else dict(params)
    headers = {
        "host": endpoint,
        "x-acs-version": version,
        "x-acs-action": action,
        "user-agent": "emulator-tests",
        "x-acs-date": date or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "x-acs-signature-nonce": nonce or uuid.uuid4().hex,
        "accept": "application/json",
        "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
    }
    if body:
        headers["content-type"] = "application/x-www-form-urlencoded"
    if security_token:
        headers["x-acs-accesskey-id"] = access_key_id
        headers["x-acs-security-token"] = security_token
    headers.update(extra_headers or {})
    if sign:
        headers["Authorization"] = sdk_sign("POST", query, headers, body, access_key_id, access_key_secret)
    sent_body = body if body_override is None else body_override
    host, port = endpoint.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        path = "/" + ("?" + urlencode(sorted(query.items())) if query else "")
        conn.request("POST", path, body=sent_body, headers=headers)
        response = conn.getresponse()
        return WireResponse(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        conn.close()
