"""Signed, expiring URLs on Overcast's own HTTP server: browser uploads and extracted-object downloads.

The key is a random server secret kept in the database (``configuration`` row ``upload.post.secret.key``
at scope ``secret``: not a listed setting, shared by every node), made on first use. Signatures are
HMAC-SHA256 over the signed parts, compared in constant time. A URL carries its expiry time; an
expired or altered one is refused (403).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from overcast.db.models import ConfigValue

if TYPE_CHECKING:
    from overcast.services import Services

SECRET_NAME = "upload.post.secret.key"
SECRET_SCOPE = "secret"

_lock = threading.Lock()
_cache: dict[int, bytes] = {}


def server_secret(services: Services, session: Session | None = None) -> bytes:
    """The secret; made on first use, in ``session`` when given (an API call's own transaction: on
    SQLite a second writer would wait for it), else in a transaction of its own."""
    key = id(services.db)
    with _lock:
        if key in _cache:
            return _cache[key]
    where = (ConfigValue.name == SECRET_NAME, ConfigValue.scope == SECRET_SCOPE, ConfigValue.scope_id == 0)
    if session is not None:
        value = session.scalar(select(ConfigValue.value).where(*where))
        if not value:
            value = secrets.token_hex(32)
            session.add(ConfigValue(name=SECRET_NAME, scope=SECRET_SCOPE, scope_id=0, value=value))
            session.flush()
            return bytes.fromhex(value)  # cached once committed and read again
    else:
        with services.db.reader() as s:
            value = s.scalar(select(ConfigValue.value).where(*where))
        if not value:
            try:
                with services.db.writer.begin() as s:
                    if s.scalar(select(ConfigValue.value).where(*where)) is None:
                        s.add(ConfigValue(name=SECRET_NAME, scope=SECRET_SCOPE, scope_id=0,
                                          value=secrets.token_hex(32)))
            except IntegrityError:
                pass  # another node made it first
            with services.db.reader() as s:
                value = s.scalar(select(ConfigValue.value).where(*where))
    assert value, "the server secret could not be stored"
    secret = bytes.fromhex(value)
    with _lock:
        _cache[key] = secret
    return secret


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signature(secret: bytes, *parts: str) -> str:
    mac = hmac.new(secret, "\n".join(parts).encode(), hashlib.sha256)
    return _b64(mac.digest())


def valid(secret: bytes, given: str, *parts: str) -> bool:
    return hmac.compare_digest(signature(secret, *parts).encode(), (given or "").encode())


def make_token(secret: bytes, payload: dict[str, Any], expires: int) -> str:
    """A self-contained signed token: base64(payload JSON).expires.signature."""
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{expires}.{signature(secret, 'token', body, str(expires))}"


def read_token(secret: bytes, token: str) -> dict[str, Any] | None:
    """The payload of a valid, unexpired token; None otherwise."""
    try:
        body, expires, sig = token.split(".")
        if not valid(secret, sig, "token", body, expires):
            return None
        if int(expires) < time.time():
            return None
        payload = json.loads(_unb64(body))
    except (ValueError, TypeError):
        return None
    return payload if isinstance(payload, dict) else None


def public_base(services: Services) -> str:
    """Where clients reach this server: the ``storage.public.url`` setting, else host and port."""
    configured = str(services.settings.get("storage.public.url") or "").strip().rstrip("/")
    return configured or services.base_url()


__all__ = ["make_token", "public_base", "read_token", "server_secret", "signature", "valid"]
