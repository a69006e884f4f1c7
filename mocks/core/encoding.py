"""A request body before its `Content-Encoding` (gzip, deflate, br or identity), bounded."""

from __future__ import annotations

import gzip
import io
import zlib

import brotli


class UnknownCoding(ValueError):
    """A `Content-Encoding` this server does not decode."""


class UndecodableBody(ValueError):
    """The body is not valid data of its `Content-Encoding`."""


class BodyTooLarge(ValueError):
    """The decoded body is longer than the limit."""


def decode_body(raw: bytes, coding: str, limit: int) -> bytes:
    """`raw` decoded by `coding` (lower-case; `identity` as is), at most `limit` bytes of it;
    reads at most `limit + 1` decoded bytes of gzip and deflate, so a bomb costs nothing."""
    try:
        if coding == "identity":
            data = raw
        elif coding in ("gzip", "x-gzip"):
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as stream:
                data = stream.read(limit + 1)
        elif coding == "deflate":
            data = zlib.decompressobj().decompress(raw, limit + 1)
        elif coding == "br":
            data = brotli.decompress(raw)
        else:
            raise UnknownCoding(coding)
    except (OSError, EOFError, zlib.error, brotli.error) as error:
        raise UndecodableBody(coding) from error
    if len(data) > limit:
        raise BodyTooLarge(limit)
    return data
