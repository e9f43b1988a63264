"""AWS Signature Version 4 for S3 requests, with header-based authorisation.

The algorithm follows the AWS documentation "Signature Calculations for the
Authorization Header" (Amazon S3 API reference). Only what buquet's S3 client
sends is covered: one region, the ``s3`` service, headers signed as given.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Iterable, Mapping
from urllib.parse import quote

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "s3"
EMPTY_PAYLOAD_SHA256 = hashlib.sha256(b"").hexdigest()
# SigV4 leaves only the unreserved characters A-Z a-z 0-9 - _ . ~ unencoded,
# which is what urllib.parse.quote keeps with safe="" (Python 3.7 and later).
_PATH_SAFE = "/"
_QUERY_SAFE = ""


def encode_path(path: str) -> str:
    """URI-encode an object path once, keeping ``/``; the text is UTF-8 encoded first."""
    return quote(path, safe=_PATH_SAFE)


def encode_query_value(value: str) -> str:
    """URI-encode a query parameter name or value, ``/`` included."""
    return quote(value, safe=_QUERY_SAFE)


def sha256_hex(data: bytes) -> str:
    """Return the hex SHA-256 of ``data``, the form of ``x-amz-content-sha256``."""
    return hashlib.sha256(data).hexdigest()


def canonical_query(parameters: Iterable[tuple[str, str]]) -> str:
    """Return the query string in SigV4's canonical form: encoded, then sorted."""
    encoded = sorted(
        (encode_query_value(name), encode_query_value(value)) for name, value in parameters
    )
    return "&".join(f"{name}={value}" for name, value in encoded)


class SigningKeys:
    """A cache of derived signing keys, one per (secret, date, region); thread-safe.

    The derived key changes once a day, so each request needs one HMAC for the
    signature instead of five.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cached: tuple[tuple[str, str, str], bytes] | None = None

    def get(self, secret_key: str, date: str, region: str) -> bytes:
        """Return the signing key of ``secret_key`` for ``date`` (YYYYMMDD) and ``region``."""
        scope = (secret_key, date, region)
        with self._lock:
            cached = self._cached
        if cached is not None and cached[0] == scope:
            return cached[1]
        key = derive_signing_key(secret_key, date, region)
        with self._lock:
            self._cached = (scope, key)
        return key


def derive_signing_key(secret_key: str, date: str, region: str) -> bytes:
    """Derive the SigV4 signing key by chaining HMAC-SHA256 over date, region and service."""
    key = _hmac(f"AWS4{secret_key}".encode(), date)
    key = _hmac(key, region)
    key = _hmac(key, SERVICE)
    return _hmac(key, "aws4_request")


def canonical_request(
    method: str,
    encoded_path: str,
    query: str,
    headers: Mapping[str, str],
    payload_sha256: str,
) -> tuple[str, str]:
    """Return the canonical request and its signed-headers list.

    ``headers`` maps lower-case names to values; every one of them is signed.
    """
    names = sorted(headers)
    canonical_headers = "".join(f"{name}:{' '.join(headers[name].split())}\n" for name in names)
    signed_headers = ";".join(names)
    request = "\n".join(
        (method, encoded_path, query, canonical_headers, signed_headers, payload_sha256)
    )
    return request, signed_headers


def authorization(
    *,
    access_key: str,
    signing_key: bytes,
    amz_date: str,
    region: str,
    request: str,
    signed_headers: str,
) -> str:
    """Return the ``Authorization`` header value that signs ``request`` (a canonical request)."""
    scope = f"{amz_date[:8]}/{region}/{SERVICE}/aws4_request"
    request_hash = hashlib.sha256(request.encode()).hexdigest()
    string_to_sign = f"{ALGORITHM}\n{amz_date}\n{scope}\n{request_hash}"
    signature = hmac.new(signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return (
        f"{ALGORITHM} Credential={access_key}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()
