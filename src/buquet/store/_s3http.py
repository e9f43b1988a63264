"""A small S3 client, for the few S3 operations buquet sends.

It implements the part of boto3's S3 client interface that
:class:`~buquet.store.S3Store` calls, with the same argument names and
response shapes, and raises botocore's exception types, so the store's
retry and error classification work the same with either client. It spends
far less CPU per request than boto3 because it skips botocore's event hooks,
model-driven serialisation and parsing, and date parsing, and sends through
a minimal HTTP/1.1 client (``_http``).

Requests are signed with AWS Signature Version 4. Credentials come from
explicit arguments or from botocore's default chain (environment, shared
files, container and instance metadata), read again before each request so
that refreshed credentials are used.
"""

from __future__ import annotations

import http
import io
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree

import botocore.session
from botocore.exceptions import ClientError, NoCredentialsError

from buquet.store import _s3xml, _sigv4
from buquet.store._http import ConnectionPool, Endpoint, TransportError
from buquet.store._s3errors import InvalidResponseError, transport_error

logger = logging.getLogger(__name__)

DEFAULT_REGION = "us-east-1"
CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 30.0
# DeleteObjects accepts at most this many keys per request (S3 API reference).
MAX_DELETE_KEYS = 1000
USER_AGENT = "buquet"
_ERROR_STATUS = 300


@dataclass(frozen=True, slots=True)
class _Target:
    """The address (base URL and host) of one bucket's requests."""

    pool: ConnectionPool
    host: str
    base_url: str
    path_prefix: str
    """The unencoded path before the key: ``/bucket/`` (path style) or ``/``."""


@dataclass(frozen=True, slots=True)
class _Response:
    status: int
    headers: dict[str, str]
    body: bytes


class S3HttpClient:
    """An S3 client for GetObject, PutObject, DeleteObject, DeleteObjects and ListObjectsV2.

    With ``endpoint_url`` (MinIO, SeaweedFS...) requests use path-style
    addressing, ``<endpoint>/<bucket>/<key>``. Without it they go to AWS with
    virtual-hosted addressing, ``https://<bucket>.s3.<region>.amazonaws.com/<key>``,
    or path style for bucket names with a dot. ``region`` defaults to the
    region in the AWS configuration, then to ``us-east-1``. Each host gets
    one connection pool of ``max_pool_connections`` kept-alive connections.
    Nothing is retried here: the caller decides what to retry.

    NOTE: the tests cover AWS addressing by the URLs it builds only. HTTPS
    requests to AWS itself are not exercised by the test suite.
    """

    def __init__(
        self,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        max_pool_connections: int = 10,
        access_key: str | None = None,
        secret_key: str | None = None,
        session_token: str | None = None,
        connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
        read_timeout: float = READ_TIMEOUT_SECONDS,
    ) -> None:
        self.endpoint_url = endpoint_url.rstrip("/") if endpoint_url else None
        self.max_pool_connections = max_pool_connections
        self._credentials = _CredentialSource(access_key, secret_key, session_token)
        self.region = region or self._credentials.configured_region() or DEFAULT_REGION
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._signing_keys = _sigv4.SigningKeys()
        self._lock = threading.Lock()
        self._targets: dict[str, _Target] = {}
        self._pools: dict[tuple[str, str, int], ConnectionPool] = {}

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        """Read an object: ``Body`` (with ``read()``), ``ETag``, ``ContentLength``."""
        response = self._send("GetObject", "GET", Bucket, Key)
        return {
            "Body": io.BytesIO(response.body),
            "ETag": _etag(response, "GetObject"),
            "ContentLength": len(response.body),
            "ResponseMetadata": _metadata(response),
        }

    def put_object(
        self,
        *,
        Bucket: str,
        Key: str,
        Body: bytes,
        IfNoneMatch: str | None = None,
        IfMatch: str | None = None,
    ) -> dict[str, Any]:
        """Write an object, with ``If-None-Match`` or ``If-Match`` when given."""
        headers = _conditions(IfNoneMatch, IfMatch)
        response = self._send("PutObject", "PUT", Bucket, Key, headers=headers, body=Body)
        return {"ETag": _etag(response, "PutObject"), "ResponseMetadata": _metadata(response)}

    def delete_object(self, *, Bucket: str, Key: str, IfMatch: str | None = None) -> dict[str, Any]:
        """Delete an object, with ``If-Match`` when given."""
        headers = _conditions(None, IfMatch)
        response = self._send("DeleteObject", "DELETE", Bucket, Key, headers=headers)
        return {"ResponseMetadata": _metadata(response)}

    def delete_objects(self, *, Bucket: str, Delete: Mapping[str, Any]) -> dict[str, Any]:
        """Delete up to 1000 objects in one quiet request; failures are listed in ``Errors``."""
        keys = [str(item["Key"]) for item in Delete["Objects"]]
        if len(keys) > MAX_DELETE_KEYS:
            raise ValueError(
                f"invalid DeleteObjects request of {len(keys)} keys: send at most "
                f"{MAX_DELETE_KEYS} per request"
            )
        body, md5 = _s3xml.delete_request(keys)
        response = self._send(
            "DeleteObjects",
            "POST",
            Bucket,
            None,
            query=[("delete", "")],
            headers={"content-md5": md5, "content-type": "application/xml"},
            body=body,
        )
        result = _parse("DeleteObjects", response, _s3xml.parse_delete_result)
        result["ResponseMetadata"] = _metadata(response)
        return result

    def list_objects_v2(
        self,
        *,
        Bucket: str,
        Prefix: str = "",
        MaxKeys: int = 1000,
        StartAfter: str | None = None,
        ContinuationToken: str | None = None,
    ) -> dict[str, Any]:
        """List keys: ``Contents[].Key``, ``IsTruncated`` and ``NextContinuationToken``."""
        query = [
            ("list-type", "2"),
            ("encoding-type", "url"),
            ("prefix", Prefix),
            ("max-keys", str(MaxKeys)),
        ]
        if StartAfter:
            query.append(("start-after", StartAfter))
        if ContinuationToken:
            query.append(("continuation-token", ContinuationToken))
        response = self._send("ListObjectsV2", "GET", Bucket, None, query=query)
        result = _parse(
            "ListObjectsV2", response, lambda body: _s3xml.parse_list(body, url_encoded=True)
        )
        result["ResponseMetadata"] = _metadata(response)
        return result

    def close(self) -> None:
        """Close every pooled connection; the client reconnects if used again."""
        with self._lock:
            pools = list(self._pools.values())
            self._pools.clear()
            self._targets.clear()
        for pool in pools:
            pool.close()

    def _send(
        self,
        operation: str,
        method: str,
        bucket: str,
        key: str | None,
        *,
        query: Sequence[tuple[str, str]] = (),
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
    ) -> _Response:
        target = self._target(bucket)
        if key is None:
            path = target.path_prefix.removesuffix("/") or "/"
        else:
            path = target.path_prefix + key
        encoded_path = _sigv4.encode_path(path)
        query_string = _sigv4.canonical_query(query)
        signed = self._signed_headers(
            method, target.host, encoded_path, query_string, extra=headers, body=body
        )
        url = f"{encoded_path}?{query_string}" if query_string else encoded_path
        response = self._exchange(target, method, url, signed, body)
        if response.status >= _ERROR_STATUS:
            raise _client_error(operation, response)
        return response

    def _signed_headers(
        self,
        method: str,
        host: str,
        encoded_path: str,
        query_string: str,
        *,
        extra: Mapping[str, str] | None,
        body: bytes,
    ) -> dict[str, str]:
        credentials = self._credentials.current()
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        payload_sha256 = _sigv4.sha256_hex(body) if body else _sigv4.EMPTY_PAYLOAD_SHA256
        headers = {"host": host, "x-amz-date": amz_date, "x-amz-content-sha256": payload_sha256}
        if credentials.token:
            headers["x-amz-security-token"] = credentials.token
        if extra:
            headers.update(extra)
        request, signed_names = _sigv4.canonical_request(
            method, encoded_path, query_string, headers, payload_sha256
        )
        signing_key = self._signing_keys.get(credentials.secret_key, amz_date[:8], self.region)
        headers["authorization"] = _sigv4.authorization(
            access_key=credentials.access_key,
            signing_key=signing_key,
            amz_date=amz_date,
            region=self.region,
            request=request,
            signed_headers=signed_names,
        )
        headers["user-agent"] = USER_AGENT
        return headers

    def _exchange(
        self, target: _Target, method: str, url: str, headers: dict[str, str], body: bytes
    ) -> _Response:
        """Send one request and read its whole response, mapping transport errors to botocore's."""
        try:
            response = target.pool.request(method, url, headers, body)
        except TransportError as exc:
            raise transport_error(exc, target.base_url + url) from exc
        return _Response(response.status, response.headers, response.body)

    def _target(self, bucket: str) -> _Target:
        target = self._targets.get(bucket)
        if target is not None:
            return target
        with self._lock:
            target = self._targets.get(bucket)
            if target is None:
                target = self._new_target(bucket)
                self._targets[bucket] = target
            return target

    def _new_target(self, bucket: str) -> _Target:
        """Build the target of ``bucket``; the caller must have acquired ``self._lock``."""
        if self.endpoint_url is not None:
            base = urlsplit(self.endpoint_url)
            path_prefix = f"{base.path.rstrip('/')}/{bucket}/"
        elif "." in bucket:
            base = urlsplit(f"https://s3.{self.region}.{_aws_domain(self.region)}")
            path_prefix = f"/{bucket}/"
        else:
            base = urlsplit(f"https://{bucket}.s3.{self.region}.{_aws_domain(self.region)}")
            path_prefix = "/"
        scheme = base.scheme or "https"
        hostname = base.hostname or ""
        default_port = 443 if scheme == "https" else 80
        port = base.port or default_port
        host = hostname if port == default_port else f"{hostname}:{port}"
        if ":" in hostname:
            host = f"[{hostname}]" if port == default_port else f"[{hostname}]:{port}"
        pool = self._pool(scheme, hostname, port)
        return _Target(pool, host, f"{scheme}://{host}", path_prefix)

    def _pool(self, scheme: str, hostname: str, port: int) -> ConnectionPool:
        pool = self._pools.get((scheme, hostname, port))
        if pool is not None:
            return pool
        endpoint = Endpoint(
            scheme,
            hostname,
            port,
            self._connect_timeout,
            self._read_timeout,
            os.environ.get("AWS_CA_BUNDLE") or None,
        )
        pool = ConnectionPool(endpoint, self.max_pool_connections)
        self._pools[scheme, hostname, port] = pool
        return pool


@dataclass(frozen=True, slots=True)
class _Credentials:
    access_key: str
    secret_key: str
    token: str | None


class _CredentialSource:
    """Explicit credentials, or botocore's default chain, resolved on first use."""

    def __init__(self, access_key: str | None, secret_key: str | None, token: str | None) -> None:
        self._static: _Credentials | None = None
        if access_key and secret_key:
            self._static = _Credentials(access_key, secret_key, token)
        self._session: botocore.session.Session | None = None
        self._chain: Any = None
        self._resolved = False
        self._lock = threading.Lock()

    def configured_region(self) -> str | None:
        """Return the region of the AWS configuration (``AWS_DEFAULT_REGION``, config file)."""
        region = self._botocore_session().get_config_variable("region")
        return str(region) if region else None

    def current(self) -> _Credentials:
        """Return the credentials to sign the next request with."""
        if self._static is not None:
            return self._static
        with self._lock:
            if not self._resolved:
                self._chain = self._botocore_session().get_credentials()
                self._resolved = True
            chain = self._chain
        if chain is None:
            raise NoCredentialsError()
        frozen = chain.get_frozen_credentials()
        if not frozen.access_key or not frozen.secret_key:
            raise NoCredentialsError()
        return _Credentials(frozen.access_key, frozen.secret_key, frozen.token or None)

    def _botocore_session(self) -> botocore.session.Session:
        if self._session is None:
            self._session = botocore.session.get_session()
        return self._session


def _conditions(if_none_match: str | None, if_match: str | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    if if_none_match is not None:
        headers["if-none-match"] = if_none_match
    if if_match is not None:
        headers["if-match"] = if_match
    return headers


def _metadata(response: _Response) -> dict[str, Any]:
    return {
        "RequestId": response.headers.get("x-amz-request-id", ""),
        "HTTPStatusCode": response.status,
        "HTTPHeaders": response.headers,
        "RetryAttempts": 0,
    }


def _etag(response: _Response, operation: str) -> str:
    etag = response.headers.get("etag")
    if not etag:
        raise InvalidResponseError(operation=operation, detail="no ETag header")
    return etag


def _parse(operation: str, response: _Response, parser: Any) -> dict[str, Any]:
    try:
        result: dict[str, Any] = parser(response.body)
    except (ElementTree.ParseError, ValueError) as exc:
        raise InvalidResponseError(operation=operation, detail=f"invalid XML: {exc}") from exc
    return result


def _client_error(operation: str, response: _Response) -> ClientError:
    """Build the ClientError boto3 raises for an S3 error response."""
    parsed = _s3xml.parse_error(response.body)
    if parsed is None:
        # boto3 does the same for an error without a body (HEAD, 304, some 412s).
        code, message = str(response.status), _reason(response.status)
    else:
        code, message = parsed
    error = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": _metadata(response),
    }
    return ClientError(error, operation)  # type: ignore[arg-type]


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def _aws_domain(region: str) -> str:
    return "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
