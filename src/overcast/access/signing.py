"""Request signatures: CloudStack's HMAC over the canonical query string, and its client variants.

The server canonical form (ApiServer.verifyRequest): sort the raw parameter names case-sensitively,
skip ``signature``, join ``name=URLEncoder(value)`` with ``&`` (Java's encoder: unreserved ``A-Za-z0-9.-*_``,
space as ``%20``, ``~`` encoded), lower-case the whole string, HMAC it with the secret key and base64
the digest. Clients differ slightly (libcloud, Marvin and CloudMonkey 5 sort by lower-cased name;
Python clients leave ``~`` raw; libcloud also leaves ``[]`` raw), so :func:`verify` accepts each of
those canonical forms, with HMAC-SHA1, SHA256 or SHA512, comparing in constant time. The digest is the
one whose size the signature has; the server's own form is tried first, the client variants only
when it does not match.

Usage:

>>> sign([("apiKey", "foo"), ("command", "listVirtualMachines"), ("listall", "true"),
...       ("response", "json")], "bar")
'B0d6hBsZTcFVCiioSxzwKA9Pke8='
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from urllib.parse import quote

_DIGESTS = (hashlib.sha1, hashlib.sha256, hashlib.sha512)
_DIGEST_BY_SIZE = {d().digest_size: d for d in _DIGESTS}


def java_encode(value: str) -> str:
    """``URLEncoder.encode(value, "UTF-8")`` with ``+`` turned into ``%20``, as CloudStack signs."""
    return quote(value, safe="*-._").replace("~", "%7E")  # quote never encodes ~; Java does


def _python_encode(value: str) -> str:
    return quote(value, safe="*-._~")


def _libcloud_encode(value: str) -> str:
    return quote(value, safe="*-._~[]")


def canonical(pairs: Sequence[tuple[str, str]], *, lower_sort: bool = False, encode=java_encode) -> str:  # type: ignore[no-untyped-def]
    items = [(k, v) for k, v in pairs if k.lower() != "signature"]
    items.sort(key=(lambda kv: (kv[0].lower(), kv[1])) if lower_sort else (lambda kv: kv))
    return "&".join(f"{k}={encode(v)}" for k, v in items).lower()


def sign(pairs: Sequence[tuple[str, str]], secret: str, digest=hashlib.sha1) -> str:  # type: ignore[no-untyped-def]
    """The signature CloudStack expects for these parameters (Java canonical form)."""
    mac = hmac.new(secret.encode(), canonical(pairs).encode(), digest)
    return base64.b64encode(mac.digest()).decode()


def candidate_strings(pairs: Sequence[tuple[str, str]]) -> list[str]:
    """Every canonical string a known client may have signed, the server's own first."""
    seen: list[str] = []
    for lower_sort in (False, True):
        for enc in (java_encode, _python_encode, _libcloud_encode):
            s = canonical(pairs, lower_sort=lower_sort, encode=enc)
            if s not in seen:
                seen.append(s)
    return seen


def verify(pairs: Sequence[tuple[str, str]], secret: str, signature: str) -> bool:
    """True when ``signature`` signs ``pairs`` with ``secret`` in any accepted canonical form.

    The digest is the one whose size the signature has (SHA1 20 bytes, SHA256 32, SHA512 64: no other
    digest could match it). The server's canonical form is tried first; when it does not match, every
    client variant is computed and compared, without stopping early, so the time a rejection takes
    does not depend on how much of the signature was right. Each comparison is
    ``hmac.compare_digest``.
    """
    try:
        given = base64.b64decode(signature.strip().replace(" ", "+"), validate=True)
    except (ValueError, TypeError):
        return False
    key = secret.encode()
    digest = _DIGEST_BY_SIZE.get(len(given), hashlib.sha1)  # any other size: compared, and refused
    server_form = canonical(pairs)
    if hmac.compare_digest(hmac.new(key, server_form.encode(), digest).digest(), given):
        return True
    ok = False
    for text in candidate_strings(pairs)[1:]:  # [0] is the server's form, checked above
        ok |= hmac.compare_digest(hmac.new(key, text.encode(), digest).digest(), given)
    return ok
