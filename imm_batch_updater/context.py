"""One invocation's view of FC's `context`, and the service endpoints derived from it and the settings.

FC's context object (python3.10 runtime: `FCContext`) has `request_id`, `credentials` (`access_key_id`,
`access_key_secret`, `security_token`), `function` (`name`, `handler`, `memory`, `timeout`), `region` and
`account_id`; any of them may be missing (python3.12 drops `credentials`; local runs pass a dict or nothing), so
they are read with `getattr` from an object and with `get` from a dict.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple, Protocol

from imm_batch_updater import credentials as creds
from imm_batch_updater.config import DEFAULT_TIMEOUT_S, Settings
from imm_batch_updater.retry import Deadline, sink_reserve_s


class Context(Protocol):
    """What sources and sinks may use of an invocation."""

    settings: Settings
    request_id: str | None
    function_name: str | None
    region: str | None  # the function's own region (context.region, FC_REGION): everything but IMM
    imm_region: str | None  # IMM's region (IMM_REGION, else `region`): IMM's endpoint only
    account_id: str | None
    deadline: Deadline  # every call before the report: IMM, OSS, the work queue
    sinks_deadline: Deadline  # the optional sinks' calls: later than `deadline` by their reserve when there are some

    def credentials(self) -> creds.Credentials: ...


class InvocationContext:
    """Per-invocation view of FC's context: ids, the deadlines, the regions, and fresh credentials.

    `region` is the function's own region (`context.region`, else FC_REGION): the default endpoints of what is the
    function's (its work queue, the MNS topic and FC sinks, OSS reads without a region of their own) are there.
    `imm_region` (IMM_REGION, else `region`) is for IMM's endpoint only: IMM may be in another region.

    `sinks_deadline` is the function timeout minus its safety margin (retry.Deadline.for_timeout); `deadline`, which
    bounds every call made before the report (IMM, OSS, the work queue), is the same one, or, with optional sinks
    configured, earlier by their reserve (retry.sink_reserve_s), so that a slow IMM cannot leave them no time.
    """

    __slots__ = (
        "raw",
        "settings",
        "request_id",
        "function_name",
        "region",
        "imm_region",
        "account_id",
        "timeout_s",
        "deadline",
        "sinks_deadline",
    )

    def __init__(self, context: Any, settings: Settings) -> None:
        self.raw = context
        self.settings = settings
        if isinstance(context, dict):
            request_id, function = context.get("request_id"), context.get("function")
            region, account_id = context.get("region"), context.get("account_id")
        else:
            request_id = getattr(context, "request_id", None)
            function = getattr(context, "function", None)
            region = getattr(context, "region", None)
            account_id = getattr(context, "account_id", None)
        if isinstance(function, dict):
            name, timeout = function.get("name"), function.get("timeout")
        else:
            name, timeout = getattr(function, "name", None), getattr(function, "timeout", None)
        self.request_id: str | None = _str(request_id)
        self.function_name: str | None = _str(name) or settings.fc_function_name
        self.region: str | None = settings.function_region(_str(region))
        self.imm_region: str | None = settings.imm_region_for(self.region)
        self.account_id: str | None = _str(account_id) or settings.fc_account_id
        self.timeout_s = _timeout(timeout)
        self.deadline = self.sinks_deadline = Deadline.for_timeout(self.timeout_s)
        if settings.sinks:  # without optional sinks (a plain update's warm path) the calls keep the whole time
            self.deadline = self.deadline.before(sink_reserve_s(self.timeout_s, self.deadline.budget_s))

    def credentials(self) -> creds.Credentials:
        """The role's credentials, read afresh (FC may rotate them). Raises CredentialsUnavailable."""
        return creds.resolve(self.raw)


def _str(value: Any) -> str | None:
    if type(value) is str:  # the common case: FC's own strings
        return value or None
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value).strip() or None


MAX_TIMEOUT_S = 86_400  # FC 3.0's longest function timeout (1 to 86400 s)


def _timeout(value: Any) -> float:
    """`function.timeout` in seconds: FC's integer, 1 to 86400 (86400 included); anything else, DEFAULT_TIMEOUT_S."""
    try:
        timeout = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer too large for a float (10**400)
        return DEFAULT_TIMEOUT_S
    return timeout if 0 < timeout <= MAX_TIMEOUT_S else DEFAULT_TIMEOUT_S


# -- endpoints ---------------------------------------------------------------------------------------------------
class EndpointUnknown(Exception):
    """A default endpoint needs a value nobody gave (the message says which variable to set)."""


class Endpoint(NamedTuple):
    scheme: str  # "http" or "https"
    host: str  # host[:port]

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"


# An Alibaba Cloud region id (`cn-hangzhou`, `ap-southeast-1`, `cn-shanghai-finance-1`): what may be put into a
# host name. Anything else (`cn-hangzhou@attacker:443#`, `x.example.com/`) would make the URL name another host, and
# the request signed with the role's keys (its security token in a header) go there.
REGION_ID = re.compile(r"[A-Za-z][A-Za-z0-9]{0,15}(?:-[A-Za-z0-9]{1,24}){1,4}")  # host names ignore case

# Public and VPC hosts of each service (Alibaba Cloud endpoint lists; `IMM_NETWORK=vpc` picks the second).
_HOSTS = {
    "imm": ("imm.{region}.aliyuncs.com", "imm-vpc.{region}.aliyuncs.com"),
    "oss": ("oss-{region}.aliyuncs.com", "oss-{region}-internal.aliyuncs.com"),
    "mns": ("{account}.mns.{region}.aliyuncs.com", "{account}.mns.{region}-internal.aliyuncs.com"),
    "fc": ("{account}.{region}.fc.aliyuncs.com", "{account}.{region}-internal.fc.aliyuncs.com"),
}


def endpoint(
    service: str,
    configured: str | None,
    *,
    variable: str,
    region: str | None,
    account: str | None = None,
    network: str | None = None,
    default_scheme: str = "https",
    region_variable: str = "FC_REGION",
) -> Endpoint:
    """Where to reach `service`: the configured value (a URL such as `http://127.0.0.1:9100`, or a bare host), else
    the region's public or VPC host; `default_scheme` when no URL says otherwise. Raises EndpointUnknown naming
    `variable`, and `region_variable`, the setting the region comes from: FC_REGION for what is the function's (its
    region is `context.region`, else FC_REGION), IMM_REGION for IMM's endpoint.

    >>> endpoint("mns", None, variable="WORK_QUEUE_ENDPOINT", region="cn-hangzhou", account="123").url
    'https://123.mns.cn-hangzhou.aliyuncs.com'
    >>> endpoint("imm", "127.0.0.1:9100", variable="IMM_ENDPOINT", region=None, default_scheme="http").url
    'http://127.0.0.1:9100'
    """
    if configured:
        value = configured.strip().rstrip("/")
        for scheme in ("http", "https"):
            if value.lower().startswith(scheme + "://"):
                return Endpoint(scheme, value[len(scheme) + 3 :].split("/", 1)[0])
        return Endpoint(default_scheme, value.split("/", 1)[0])
    public, vpc = _HOSTS[service]
    template = vpc if network == "vpc" else public
    if not region:
        raise EndpointUnknown(f"no region for the {service.upper()} endpoint: set {variable} or {region_variable}")
    if not REGION_ID.fullmatch(region):
        raise EndpointUnknown(
            f"the region for the {service.upper()} endpoint is not a region id (such as cn-hangzhou): set "
            f"{region_variable} to one, or {variable}"
        )
    if "{account}" in template and not account:
        raise EndpointUnknown(
            f"no account id for the {service.upper()} endpoint (context.account_id / FC_ACCOUNT_ID): set {variable}"
        )
    return Endpoint(default_scheme, template.format(region=region, account=account))
