"""Unit tests of store URLs: parsing in open_store and precedence in resolve_store_url."""

from __future__ import annotations

from pathlib import Path

import pytest

from buquet.errors import ConfigError
from buquet.store import (
    LocalStore,
    MemoryStore,
    S3HttpClient,
    S3Store,
    open_store,
    resolve_store_url,
)


@pytest.fixture(autouse=True)
def _no_s3_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BUQUET_STORE", "S3_BUCKET", "S3_ENDPOINT", "S3_REGION", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_REGION", "us-east-1")


def test_open_file_relative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    store = open_store("file://.buquet")

    assert isinstance(store, LocalStore)
    assert store.root == tmp_path / ".buquet"
    assert store.url == f"file://{tmp_path / '.buquet'}"


def test_open_file_absolute(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}/data")

    assert isinstance(store, LocalStore)
    assert store.root == tmp_path / "data"


def test_open_file_localhost(tmp_path: Path) -> None:
    store = open_store(f"file://localhost{tmp_path}")

    assert isinstance(store, LocalStore)
    assert store.root == tmp_path


def test_open_bare_path(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "plain"))

    assert isinstance(store, LocalStore)
    assert store.root == tmp_path / "plain"


def test_open_s3_bucket_and_prefix() -> None:
    store = open_store("s3://my-bucket/team/jobs/")

    assert isinstance(store, S3Store)
    assert store.bucket == "my-bucket"
    assert store.prefix == "team/jobs/"
    assert store.url == "s3://my-bucket/team/jobs"
    store.close()


def test_open_s3_bucket_only() -> None:
    store = open_store("s3://my-bucket")

    assert isinstance(store, S3Store)
    assert store.prefix == ""
    assert store.url == "s3://my-bucket"
    store.close()


def test_open_s3_endpoint_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3_ENDPOINT", "http://127.0.0.1:9")

    store = open_store("s3://my-bucket")

    assert isinstance(store, S3Store)
    assert isinstance(store._client, S3HttpClient)
    assert store._client.endpoint_url == "http://127.0.0.1:9"
    store.close()


def test_open_memory_shared_by_url() -> None:
    first = open_store("memory://shared-by-url")
    second = open_store("memory://shared-by-url")
    other = open_store("memory://another-name")

    first.put("k", b"1")

    assert isinstance(first, MemoryStore)
    assert second is first
    assert other.get("k") is None
    assert first.url == "memory://shared-by-url"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://host/path",
        "http://example.invalid/x",
        "",
        "   ",
        "file://",
        "s3://",
        "s3://UPPER/x",
        "s3://ab",
        "s3://bucket_with_underscore",
        "s3://my-bucket/x?endpoint=y",
    ],
)
def test_open_invalid_raises_config_error(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        open_store(url)

    assert "use" in str(caught.value)


def test_unknown_scheme_message_names_value() -> None:
    with pytest.raises(ConfigError) as caught:
        open_store("ftp://host/path")

    message = str(caught.value)
    assert "'ftp://host/path'" in message
    assert "s3://BUCKET/PREFIX" in message


def test_resolve_explicit_wins(tmp_path: Path) -> None:
    (tmp_path / ".buquet.toml").write_text('store = "s3://from-file"\n')
    environ = {"BUQUET_STORE": "s3://from-env", "S3_BUCKET": "from-bucket"}

    url = resolve_store_url("memory://explicit", cwd=tmp_path, environ=environ)

    assert url == "memory://explicit"


def test_resolve_env_before_file(tmp_path: Path) -> None:
    (tmp_path / ".buquet.toml").write_text('store = "s3://from-file"\n')
    environ = {"BUQUET_STORE": "s3://from-env", "S3_BUCKET": "from-bucket"}

    assert resolve_store_url(None, cwd=tmp_path, environ=environ) == "s3://from-env"


def test_resolve_file_before_bucket(tmp_path: Path) -> None:
    (tmp_path / ".buquet.toml").write_text('# local settings\nstore = "s3://from-file/p"\n')

    url = resolve_store_url(cwd=tmp_path, environ={"S3_BUCKET": "from-bucket"})

    assert url == "s3://from-file/p"


def test_resolve_bucket_env(tmp_path: Path) -> None:
    url = resolve_store_url(cwd=tmp_path, environ={"S3_BUCKET": "from-bucket"})

    assert url == "s3://from-bucket"


def test_resolve_file_without_store_key(tmp_path: Path) -> None:
    (tmp_path / ".buquet.toml").write_text('[other]\nstore = "s3://nested"\n')

    assert resolve_store_url(cwd=tmp_path, environ={}) == "file://.buquet"


def test_resolve_default(tmp_path: Path) -> None:
    assert resolve_store_url(cwd=tmp_path, environ={}) == "file://.buquet"


def test_resolve_empty_values_skipped(tmp_path: Path) -> None:
    environ = {"BUQUET_STORE": "", "S3_BUCKET": ""}

    assert resolve_store_url("", cwd=tmp_path, environ=environ) == "file://.buquet"


def test_resolve_invalid_toml_names_file(tmp_path: Path) -> None:
    config = tmp_path / ".buquet.toml"
    config.write_text("store = \n")

    with pytest.raises(ConfigError) as caught:
        resolve_store_url(cwd=tmp_path, environ={})

    assert str(config) in str(caught.value)


@pytest.mark.parametrize("value", ["1", '""', '["s3://x"]'])
def test_resolve_invalid_store_value(tmp_path: Path, value: str) -> None:
    config = tmp_path / ".buquet.toml"
    config.write_text(f"store = {value}\n")

    with pytest.raises(ConfigError) as caught:
        resolve_store_url(cwd=tmp_path, environ={})

    assert str(config) in str(caught.value)


def test_resolve_uses_process_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUQUET_STORE", "memory://from-process")

    assert resolve_store_url(cwd=tmp_path) == "memory://from-process"


def test_open_store_without_url_resolves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUQUET_STORE", "memory://resolved")

    store = open_store()

    assert store.url == "memory://resolved"


def test_open_s3_sizes_pool_for_concurrency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("S3_ENDPOINT", "http://127.0.0.1:1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_REGION", "us-east-1")

    small = open_store("s3://bucket", concurrency=4)
    large = open_store("s3://bucket", concurrency=100)

    assert isinstance(small, S3Store)
    assert isinstance(large, S3Store)
    assert isinstance(small._client, S3HttpClient)
    assert isinstance(large._client, S3HttpClient)
    assert small._client.max_pool_connections == 32
    assert large._client.max_pool_connections == 124
