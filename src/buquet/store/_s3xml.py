"""The XML bodies of the S3 requests and responses that buquet's S3 client handles.

Responses are parsed with :mod:`xml.etree.ElementTree` and matched by local
element name, so a server that leaves out S3's XML namespace is read the same.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote_plus
from xml.etree import ElementTree
from xml.sax.saxutils import escape

S3_NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"


def local_name(tag: str) -> str:
    """Return an element's tag without its ``{namespace}``."""
    return tag.rpartition("}")[2]


def parse_error(body: bytes) -> tuple[str, str] | None:
    """Return (Code, Message) of an S3 ``<Error>`` body, or None when the body is not one."""
    if not body:
        return None
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return None
    if local_name(root.tag) != "Error":
        return None
    fields = {local_name(child.tag): child.text or "" for child in root}
    code = fields.get("Code")
    if not code:
        return None
    return code, fields.get("Message", "")


def parse_list(body: bytes, url_encoded: bool) -> dict[str, Any]:
    """Parse a ListObjectsV2 result into boto3's response shape.

    Each entry of ``Contents`` has ``Key``, ``ETag`` and ``Size`` only. With
    ``url_encoded`` the keys are decoded as S3 encodes them for
    ``encoding-type=url`` (``+`` for a space, ``%XX`` for other bytes).
    """
    root = ElementTree.fromstring(body)
    contents: list[dict[str, Any]] = []
    result: dict[str, Any] = {"IsTruncated": False}
    for child in root:
        name = local_name(child.tag)
        if name == "Contents":
            contents.append(_list_entry(child, url_encoded))
        elif name == "IsTruncated":
            result["IsTruncated"] = (child.text or "").strip().lower() == "true"
        elif name == "NextContinuationToken" and child.text:
            result["NextContinuationToken"] = child.text
        elif name == "KeyCount" and child.text:
            result["KeyCount"] = int(child.text)
    if contents:
        result["Contents"] = contents
    return result


def _list_entry(element: ElementTree.Element, url_encoded: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    for field in element:
        name = local_name(field.tag)
        text = field.text or ""
        if name == "Key":
            entry["Key"] = unquote_plus(text) if url_encoded else text
        elif name == "ETag":
            entry["ETag"] = text
        elif name == "Size":
            entry["Size"] = int(text or 0)
    return entry


def delete_request(keys: Sequence[str]) -> tuple[bytes, str]:
    """Return a quiet DeleteObjects body for ``keys`` and its Content-MD5 (base64)."""
    objects = "".join(f"<Object><Key>{escape(key)}</Key></Object>" for key in keys)
    body = f'<Delete xmlns="{S3_NAMESPACE}"><Quiet>true</Quiet>{objects}</Delete>'.encode()
    digest = hashlib.md5(body, usedforsecurity=False).digest()
    return body, base64.b64encode(digest).decode("ascii")


def parse_delete_result(body: bytes) -> dict[str, Any]:
    """Parse a DeleteObjects result into boto3's shape: ``Deleted`` and ``Errors`` lists."""
    result: dict[str, Any] = {"Deleted": [], "Errors": []}
    if not body.strip():
        return result
    for child in ElementTree.fromstring(body):
        name = local_name(child.tag)
        fields = {local_name(field.tag): field.text or "" for field in child}
        if name == "Deleted":
            result["Deleted"].append({"Key": fields.get("Key", "")})
        elif name == "Error":
            result["Errors"].append(
                {
                    "Key": fields.get("Key", ""),
                    "Code": fields.get("Code", ""),
                    "Message": fields.get("Message", ""),
                }
            )
    return result
