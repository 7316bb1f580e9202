"""Parse multipart/form-data bodies byte-exactly (wrangler's script and settings uploads)."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message

__all__ = ["Part", "content_type_params", "parse_multipart"]


@dataclass(frozen=True)
class Part:
    """One form field: its name, optional filename, content type and raw bytes."""

    name: str
    filename: str | None
    content_type: str
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def content_type_params(header: str) -> tuple[str, dict[str, str]]:
    """Split a Content-Type header into its media type and parameters."""
    msg = Message()
    msg["content-type"] = header
    params = {k.lower(): v for k, v in msg.get_params()[1:]}
    return msg.get_content_type(), params


def _disposition(value: str) -> dict[str, str]:
    msg = Message()
    msg["content-disposition"] = value
    return {k.lower(): v for k, v in msg.get_params(header="content-disposition")[1:]}


def parse_multipart(body: bytes, content_type: str) -> list[Part]:
    """Split `body` on the boundary named in `content_type`; raise ValueError if malformed."""
    media, params = content_type_params(content_type)
    boundary = params.get("boundary")
    if media != "multipart/form-data" or not boundary:
        raise ValueError(f"not multipart/form-data: {content_type!r}")
    delim = b"--" + boundary.encode("latin-1")
    chunks = body.split(delim)
    if len(chunks) < 3:
        raise ValueError("multipart body has no parts")
    parts: list[Part] = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk[2:] if chunk.startswith(b"\r\n") else chunk
        head, sep, payload = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("multipart part without a header block")
        if payload.endswith(b"\r\n"):
            payload = payload[:-2]
        headers: dict[str, str] = {}
        for line in head.decode("utf-8").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        disp = _disposition(headers.get("content-disposition", ""))
        parts.append(
            Part(
                name=disp.get("name", ""),
                filename=disp.get("filename"),
                content_type=headers.get("content-type", "text/plain"),
                body=payload,
            )
        )
    return parts
