"""Unit tests of buquet's S3 client: signing, key encoding, response parsing, error mapping.

The client talks to a scripted HTTP server on 127.0.0.1; nothing leaves the machine.
"""

from __future__ import annotations

import base64
import hashlib
import unicodedata
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from s3http_server import S3_DATE, Reply, ScriptedServer

from buquet.errors import AmbiguousWrite, PreconditionFailed, StoreError
from buquet.store import RetryPolicy, S3HttpClient, S3Store, _sigv4
from buquet.store._retry import ErrorKind, classify, may_have_been_applied

BUCKET = "unit-bucket"
ACCESS_KEY = "AKIDUNITTEST"
SECRET_KEY = "unit/secret+key"
ETAG = '"0123456789abcdef0123456789abcdef"'
NO_RETRY = RetryPolicy(max_attempts=1)


def error_body(code: str, message: str = "scripted") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
        f"<Message>{message}</Message><RequestId>r1</RequestId></Error>"
    ).encode()


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as running:
        yield running


@pytest.fixture
def client(server: ScriptedServer) -> Iterator[S3HttpClient]:
    http = S3HttpClient(
        endpoint_url=server.endpoint,
        region="eu-west-3",
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        read_timeout=2.0,
    )
    yield http
    http.close()


def store_on(client: S3HttpClient, retry: RetryPolicy = NO_RETRY) -> S3Store:
    return S3Store(BUCKET, "pre", client=client, retry=retry, sleep=lambda _: None)


# --- Signature Version 4 ---------------------------------------------------------


def test_sigv4_aws_get_object_example() -> None:
    # The GET Object example of the S3 API reference ("Signature Calculations for
    # the Authorization Header: Transferring Payload in a Single Chunk").
    headers = {
        "host": "examplebucket.s3.amazonaws.com",
        "range": "bytes=0-9",
        "x-amz-content-sha256": _sigv4.EMPTY_PAYLOAD_SHA256,
        "x-amz-date": "20130524T000000Z",
    }
    request, signed = _sigv4.canonical_request(
        "GET", "/test.txt", "", headers, _sigv4.EMPTY_PAYLOAD_SHA256
    )
    key = _sigv4.derive_signing_key(
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524", "us-east-1"
    )

    header = _sigv4.authorization(
        access_key="AKIAIOSFODNN7EXAMPLE",
        signing_key=key,
        amz_date="20130524T000000Z",
        region="us-east-1",
        request=request,
        signed_headers=signed,
    )

    request_hash = hashlib.sha256(request.encode()).hexdigest()
    assert request_hash == "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"
    assert signed == "host;range;x-amz-content-sha256;x-amz-date"
    assert header == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )


def test_signing_key_cached_per_day() -> None:
    keys = _sigv4.SigningKeys()

    first = keys.get("secret", "20261204", "us-east-1")

    assert keys.get("secret", "20261204", "us-east-1") is first
    assert keys.get("secret", "20261205", "us-east-1") != first
    assert keys.get("other", "20261205", "us-east-1") != first


def botocore_authorization(method: str, url: str, headers: dict[str, str], body: bytes) -> str:
    """Sign a request with botocore's own S3 signer, at the request's x-amz-date."""
    signed_names = ("host", "x-amz-date", "x-amz-content-sha256", "if-match", "if-none-match")
    request = AWSRequest(
        method=method,
        url=url,
        headers={name: value for name, value in headers.items() if name in signed_names},
        data=body,
    )
    request.context["timestamp"] = headers["x-amz-date"]
    S3SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "eu-west-3").add_auth(request)
    return str(request.headers["Authorization"])


@pytest.mark.parametrize("key", ["plain.json", "a b/c~d+e", "x/é/ü?&=%"])
def test_put_signature_matches_botocore(
    client: S3HttpClient, server: ScriptedServer, key: str
) -> None:
    server.script(Reply(headers={"ETag": ETAG}))

    client.put_object(Bucket=BUCKET, Key=key, Body=b"{}", IfMatch=ETAG)

    sent = server.requests[0]
    url = server.endpoint + sent.path
    assert sent.headers["x-amz-content-sha256"] == hashlib.sha256(b"{}").hexdigest()
    assert sent.headers["if-match"] == ETAG
    assert sent.headers["authorization"] == botocore_authorization("PUT", url, sent.headers, b"{}")


def test_list_signature_matches_botocore(client: S3HttpClient, server: ScriptedServer) -> None:
    server.script(Reply(body=b"<ListBucketResult></ListBucketResult>"))

    client.list_objects_v2(Bucket=BUCKET, Prefix="a b/", StartAfter="a b/x+y", MaxKeys=7)

    sent = server.requests[0]
    url = server.endpoint + sent.path
    assert sent.headers["authorization"] == botocore_authorization("GET", url, sent.headers, b"")


def test_session_token_signed(server: ScriptedServer) -> None:
    client = S3HttpClient(
        endpoint_url=server.endpoint,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        session_token="token/value",
    )
    server.script(Reply(headers={"ETag": ETAG}))

    client.get_object(Bucket=BUCKET, Key="a")

    sent = server.requests[0]
    assert sent.headers["x-amz-security-token"] == "token/value"
    assert "x-amz-security-token" in sent.headers["authorization"]
    client.close()


# --- Key encoding and addressing -------------------------------------------------


@pytest.mark.parametrize(
    ("key", "path"),
    [
        ("a b", "/unit-bucket/a%20b"),
        ("t~x", "/unit-bucket/t~x"),
        ("p+q", "/unit-bucket/p%2Bq"),
        (unicodedata.normalize("NFC", "é"), "/unit-bucket/%C3%A9"),
        ("dir/sub/file.json", "/unit-bucket/dir/sub/file.json"),
        ("50%", "/unit-bucket/50%25"),
    ],
)
def test_key_encoded_once(
    client: S3HttpClient, server: ScriptedServer, key: str, path: str
) -> None:
    server.script(Reply(headers={"ETag": ETAG}, body=b"x"))

    client.get_object(Bucket=BUCKET, Key=key)

    assert server.requests[0].path == path


def test_encode_path_keeps_unreserved() -> None:
    unreserved = "AZaz09-_.~"

    assert _sigv4.encode_path(f"/{unreserved}/") == f"/{unreserved}/"
    assert _sigv4.encode_query_value("a/b c") == "a%2Fb%20c"


def test_virtual_hosted_without_endpoint() -> None:
    client = S3HttpClient(region="eu-west-3", access_key="a", secret_key="b")

    target = client._target("my-bucket")
    dotted = client._target("my.bucket")

    assert target.host == "my-bucket.s3.eu-west-3.amazonaws.com"
    assert target.path_prefix == "/"
    assert dotted.host == "s3.eu-west-3.amazonaws.com"
    assert dotted.path_prefix == "/my.bucket/"
    client.close()


def test_endpoint_with_port_and_path(server: ScriptedServer) -> None:
    client = S3HttpClient(endpoint_url=server.endpoint + "/s3/", access_key="a", secret_key="b")
    server.script(Reply(headers={"ETag": ETAG}))

    client.get_object(Bucket=BUCKET, Key="k")

    sent = server.requests[0]
    assert sent.path == "/s3/unit-bucket/k"
    assert sent.headers["host"] == server.endpoint.removeprefix("http://")
    client.close()


# --- Responses -------------------------------------------------------------------


def test_get_returns_boto3_shape(client: S3HttpClient, server: ScriptedServer) -> None:
    server.script(Reply(headers={"ETag": ETAG}, body=b"data"))

    response = client.get_object(Bucket=BUCKET, Key="k")

    assert response["Body"].read() == b"data"
    assert response["ETag"] == ETAG
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert response["ResponseMetadata"]["HTTPHeaders"]["date"] == S3_DATE
    assert response["ResponseMetadata"]["HTTPHeaders"]["etag"] == ETAG


def test_list_decodes_url_encoded_keys(client: S3HttpClient, server: ScriptedServer) -> None:
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<Name>unit-bucket</Name><Prefix>p%2F</Prefix><KeyCount>3</KeyCount>"
        b"<MaxKeys>3</MaxKeys><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>"
        b"<NextContinuationToken>tok/en=</NextContinuationToken>"
        b"<Contents><Key>p/a+b</Key><ETag>&quot;e1&quot;</ETag><Size>3</Size></Contents>"
        b"<Contents><Key>p/plus%2Bx</Key><ETag>&quot;e2&quot;</ETag><Size>0</Size></Contents>"
        b"<Contents><Key>p/%C3%A9%01</Key><ETag>&quot;e3&quot;</ETag><Size>1</Size></Contents>"
        b"</ListBucketResult>"
    )
    server.script(Reply(body=body))

    response = client.list_objects_v2(
        Bucket=BUCKET, Prefix="p/", MaxKeys=3, ContinuationToken="prev/token"
    )

    assert [item["Key"] for item in response["Contents"]] == ["p/a b", "p/plus+x", "p/é\x01"]
    assert response["Contents"][0]["ETag"] == '"e1"'
    assert response["Contents"][0]["Size"] == 3
    assert response["IsTruncated"] is True
    assert response["NextContinuationToken"] == "tok/en="
    query = dict(parse_qsl(urlsplit(server.requests[0].path).query))
    assert query == {
        "list-type": "2",
        "encoding-type": "url",
        "prefix": "p/",
        "max-keys": "3",
        "continuation-token": "prev/token",
    }


def test_list_empty_has_no_contents(client: S3HttpClient, server: ScriptedServer) -> None:
    server.script(
        Reply(body=b"<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>")
    )

    response = client.list_objects_v2(Bucket=BUCKET, Prefix="none/")

    assert "Contents" not in response
    assert response["IsTruncated"] is False


def test_delete_objects_request_and_errors(client: S3HttpClient, server: ScriptedServer) -> None:
    result = (
        b"<DeleteResult><Error><Key>b&amp;c</Key><Code>AccessDenied</Code>"
        b"<Message>Access Denied</Message></Error></DeleteResult>"
    )
    server.script(Reply(body=result))

    response = client.delete_objects(
        Bucket=BUCKET, Delete={"Objects": [{"Key": "a"}, {"Key": "b&c"}], "Quiet": True}
    )

    sent = server.requests[0]
    assert sent.method == "POST"
    assert sent.path == "/unit-bucket?delete="
    assert b"<Quiet>true</Quiet>" in sent.body
    assert b"<Key>b&amp;c</Key>" in sent.body
    expected_md5 = base64.b64encode(hashlib.md5(sent.body).digest()).decode()
    assert sent.headers["content-md5"] == expected_md5
    assert response["Errors"] == [
        {"Key": "b&c", "Code": "AccessDenied", "Message": "Access Denied"}
    ]


def test_delete_objects_limit(client: S3HttpClient) -> None:
    objects = [{"Key": f"k{index}"} for index in range(1001)]

    with pytest.raises(ValueError, match="at most 1000"):
        client.delete_objects(Bucket=BUCKET, Delete={"Objects": objects, "Quiet": True})


# --- Error mapping ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (412, "PreconditionFailed", ErrorKind.PRECONDITION),
        (409, "ConditionalRequestConflict", ErrorKind.PRECONDITION),
        (404, "NoSuchKey", ErrorKind.NOT_FOUND),
        (503, "SlowDown", ErrorKind.TRANSIENT),
        (403, "RequestTimeTooSkewed", ErrorKind.FATAL),
    ],
)
def test_error_body_becomes_client_error(
    client: S3HttpClient, server: ScriptedServer, status: int, code: str, kind: ErrorKind
) -> None:
    server.script(Reply(status=status, body=error_body(code, "why")))

    with pytest.raises(ClientError) as caught:
        client.put_object(Bucket=BUCKET, Key="k", Body=b"1", IfMatch=ETAG)

    response = caught.value.response
    assert response["Error"]["Code"] == code
    assert response["Error"]["Message"] == "why"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert response["ResponseMetadata"]["HTTPHeaders"]["date"] == S3_DATE
    assert caught.value.operation_name == "PutObject"
    assert classify(caught.value) is kind


def test_bodiless_error_uses_status(client: S3HttpClient, server: ScriptedServer) -> None:
    server.script(Reply(status=412))

    with pytest.raises(ClientError) as caught:
        client.delete_object(Bucket=BUCKET, Key="k", IfMatch=ETAG)

    assert caught.value.response["Error"]["Code"] == "412"
    assert caught.value.response["Error"]["Message"] == "Precondition Failed"
    assert classify(caught.value) is ErrorKind.PRECONDITION


def test_store_412_raises_precondition(client: S3HttpClient, server: ScriptedServer) -> None:
    server.script(Reply(status=412, body=error_body("PreconditionFailed")))

    with pytest.raises(PreconditionFailed):
        store_on(client).create("a", b"1")


def test_store_409_raises_precondition(client: S3HttpClient, server: ScriptedServer) -> None:
    server.script(Reply(status=409, body=error_body("ConditionalRequestConflict")))

    with pytest.raises(PreconditionFailed):
        store_on(client).replace("a", b"1", ETAG)


def test_store_404_get_returns_none(client: S3HttpClient, server: ScriptedServer) -> None:
    server.script(Reply(status=404, body=error_body("NoSuchKey")))

    assert store_on(client).get("a") is None


def test_store_503_retried(client: S3HttpClient, server: ScriptedServer) -> None:
    server.script(
        Reply(status=503, body=error_body("SlowDown")),
        Reply(headers={"ETag": ETAG}),
    )

    etag = store_on(client, RetryPolicy(max_attempts=3)).create("a", b"1")

    assert etag == ETAG
    assert len(server.requests) == 2


def test_store_skew_names_clock(client: S3HttpClient, server: ScriptedServer) -> None:
    server.script(Reply(status=403, body=error_body("RequestTimeTooSkewed")))

    with pytest.raises(StoreError) as caught:
        store_on(client, RetryPolicy(max_attempts=3)).get("a")

    assert "RequestTimeTooSkewed" in str(caught.value)
    assert "clock" in str(caught.value)
    assert len(server.requests) == 1


def test_body_cut_short_is_streaming_error(client: S3HttpClient, server: ScriptedServer) -> None:
    server.script(Reply(headers={"ETag": ETAG}, body=b"0123456789", cut_body_at=4))

    with pytest.raises(ResponseStreamingError) as caught:
        client.get_object(Bucket=BUCKET, Key="k")

    assert classify(caught.value) is ErrorKind.TRANSIENT
    assert may_have_been_applied(caught.value)


def test_closed_before_reply_is_connection_closed(
    client: S3HttpClient, server: ScriptedServer
) -> None:
    server.script(Reply(close_before_reply=True))

    with pytest.raises(ConnectionClosedError) as caught:
        client.put_object(Bucket=BUCKET, Key="k", Body=b"1")

    assert may_have_been_applied(caught.value)


def test_lost_write_response_is_ambiguous(client: S3HttpClient, server: ScriptedServer) -> None:
    server.script(Reply(close_before_reply=True))

    with pytest.raises(AmbiguousWrite):
        store_on(client).create("a", b"1")


def test_read_timeout_mapped(server: ScriptedServer) -> None:
    client = S3HttpClient(
        endpoint_url=server.endpoint, access_key="a", secret_key="b", read_timeout=0.2
    )
    server.script(Reply(delay=1.0))

    with pytest.raises(ReadTimeoutError) as caught:
        client.get_object(Bucket=BUCKET, Key="k")

    assert may_have_been_applied(caught.value)
    client.close()


def test_refused_connection_never_applied() -> None:
    client = S3HttpClient(endpoint_url="http://127.0.0.1:1", access_key="a", secret_key="b")

    with pytest.raises(EndpointConnectionError) as caught:
        client.get_object(Bucket=BUCKET, Key="k")

    assert "127.0.0.1:1" in str(caught.value)
    assert classify(caught.value) is ErrorKind.TRANSIENT
    assert not may_have_been_applied(caught.value)
    client.close()


def test_missing_etag_is_store_error(client: S3HttpClient, server: ScriptedServer) -> None:
    server.script(Reply(body=b"no etag header"))

    with pytest.raises(StoreError) as caught:
        store_on(client).get("a")

    assert "no ETag" in str(caught.value)


def test_keep_alive_reuses_connection(client: S3HttpClient, server: ScriptedServer) -> None:
    server.script(Reply(headers={"ETag": ETAG}), Reply(headers={"ETag": ETAG}))

    client.get_object(Bucket=BUCKET, Key="a")
    client.get_object(Bucket=BUCKET, Key="b")

    pool = client._target(BUCKET).pool
    assert pool.num_connections == 1
    assert pool.num_requests == 2


# --- delete_many through S3Store -------------------------------------------------


def test_delete_many_chunks_by_1000(client: S3HttpClient, server: ScriptedServer) -> None:
    keys = [f"k/{index:04d}" for index in range(2500)]

    store_on(client).delete_many(keys)

    sizes = [request.body.count(b"<Object>") for request in server.requests]
    assert sizes == [1000, 1000, 500]
    assert b"<Key>pre/k/0000</Key>" in server.requests[0].body


def test_delete_many_names_failed_key(client: S3HttpClient, server: ScriptedServer) -> None:
    result = (
        b"<DeleteResult>"
        b"<Error><Key>pre/c</Key><Code>InternalError</Code><Message>m</Message></Error>"
        b"<Error><Key>pre/b</Key><Code>AccessDenied</Code><Message>m</Message></Error>"
        b"<Error><Key>pre/a</Key><Code>NoSuchKey</Code><Message>m</Message></Error>"
        b"</DeleteResult>"
    )
    server.script(Reply(body=result))

    with pytest.raises(StoreError) as caught:
        store_on(client).delete_many(["a", "b", "c"])

    assert caught.value.key == "b"
    assert "AccessDenied" in str(caught.value)


def test_delete_many_empty_sends_nothing(client: S3HttpClient, server: ScriptedServer) -> None:
    store_on(client).delete_many([])

    assert server.requests == []
