"""User data validation, as CloudStack's UserDataManagerImpl.validateUserData."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote

from overcast.errors import InvalidParameterValue

#: Encoded characters accepted by GET and by POST (CloudStack's limits).
MAX_GET = 4096
MAX_POST = 1048576


def validate_user_data(value: str, *, http_method: str, max_length: int) -> str:
    """The base64 user data to store (URL-decoded if needed, re-padded), or InvalidParameterValue."""
    text = value.strip()
    if "%" in text:
        text = unquote(text)
    limit = MAX_POST if http_method.upper() == "POST" else MAX_GET
    if len(text) > limit:
        raise InvalidParameterValue(
            f"User data is too long for an http {http_method.upper()} request: {len(text)} characters,"
            f" at most {limit} allowed (send it by POST for up to {MAX_POST})")
    if len(text) > max_length:
        raise InvalidParameterValue(
            f"User data is too long: {len(text)} characters of base64, at most {max_length} allowed"
            " (vm.userdata.max.length)")
    padded = text + "=" * (-len(text) % 4)
    try:
        decoded = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidParameterValue("User data is not base64 encoded (parameter userdata)") from None
    if not decoded:
        raise InvalidParameterValue("User data is empty after base64 decoding (parameter userdata)")
    return padded


def decode(value: str | None) -> str | None:
    if value is None:
        return None
    return base64.b64decode(value).decode("utf-8", "replace")
