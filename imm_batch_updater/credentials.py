"""Role credentials, resolved afresh on every invocation (FC rotates STS keys; never keep stale ones).

Order (pinned): `context.credentials` -> `ALIBABA_CLOUD_*` environment variables -> the
`alibabacloud-credentials` default chain (profile, ECS RAM role, OIDC, ...). The secret and the token are kept out
of `repr` so that a stray log line or traceback cannot print them. When the context holds the same keys as the
previous invocation's, `from_context` returns the same (immutable) `Credentials` object: the values are compared on
every invocation, only the object is reused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any


class CredentialsUnavailable(Exception):
    """No source had credentials. The message never contains key material."""


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)
    source: str = "context"  # "context", "env" or "default-chain": logged, to explain which keys signed

    @cached_property
    def cache_key(self) -> tuple[str, str, str]:
        return (self.access_key_id, self.access_key_secret, self.security_token or "")


def from_context(context: Any) -> Credentials | None:
    creds = context.get("credentials") if isinstance(context, dict) else getattr(context, "credentials", None)
    if creds is None:
        return None
    if isinstance(creds, dict):
        ak, secret, token = creds.get("access_key_id"), creds.get("access_key_secret"), creds.get("security_token")
    else:
        ak = getattr(creds, "access_key_id", None)
        secret = getattr(creds, "access_key_secret", None)
        token = getattr(creds, "security_token", None)
    if ak and secret:
        token = token or None
        global _from_context_last
        last = _from_context_last
        if last is None or last.cache_key != (ak, secret, token or ""):
            last = _from_context_last = Credentials(ak, secret, token, "context")
        return last  # with the same keys as the previous invocation's, the same (immutable) object
    return None


_from_context_last: Credentials | None = None


def from_env(env: dict[str, str] | os._Environ[str] | None = None) -> Credentials | None:
    env = os.environ if env is None else env
    ak, secret = env.get("ALIBABA_CLOUD_ACCESS_KEY_ID"), env.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
    if ak and secret:
        return Credentials(ak, secret, env.get("ALIBABA_CLOUD_SECURITY_TOKEN") or None, "env")
    return None


def from_default_chain() -> Credentials | None:
    # Imported lazily: the chain is only needed outside FC (a developer's profile, an ECS role), and the package
    # reads environment variables at import time.
    try:
        from alibabacloud_credentials.client import Client

        model = Client().get_credential()
    except Exception:
        return None
    if model.access_key_id and model.access_key_secret:
        return Credentials(model.access_key_id, model.access_key_secret, model.security_token or None, "default-chain")
    return None


def resolve(context: Any) -> Credentials:
    """The credentials to sign with for this invocation."""
    creds = from_context(context) or from_env() or from_default_chain()
    if creds is not None:
        return creds
    raise CredentialsUnavailable(
        "no credentials: FC passes the function role's keys in the context or ALIBABA_CLOUD_* variables; "
        "set a role on the function (or those variables locally)"
    )
