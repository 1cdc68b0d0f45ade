"""``s3://bucket/prefix`` locations: one parser for the snapshot runs and the Milvus backups."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import ClassVar, Self


@dataclass(frozen=True)
class S3Prefix:
    """A bucket and a key prefix under which a set of objects lives.

    Subclasses name the error a bad URI raises (:attr:`parse_error`), so each command reports it
    as its own kind of failure.

    Attributes:
        bucket: The bucket.
        prefix: The key prefix, without leading or trailing slashes (never empty).
    """

    bucket: str
    prefix: str

    parse_error: ClassVar[type[Exception]] = ValueError

    @classmethod
    def parse(cls, uri: str) -> Self:
        """Parse ``s3://bucket/prefix`` (slashes around the prefix are dropped).

        Raises:
            Exception: :attr:`parse_error`, when ``uri`` is not an ``s3://`` URI with a bucket and
                a prefix.
        """
        parsed = urllib.parse.urlsplit(uri)
        prefix = parsed.path.strip("/")
        if parsed.scheme != "s3" or not parsed.netloc or not prefix or parsed.query or parsed.fragment:
            raise cls.parse_error(f"expected s3://<bucket>/<prefix>, got {uri!r}")
        return cls(parsed.netloc, prefix)

    @property
    def uri(self) -> str:
        """The ``s3://bucket/prefix`` form."""
        return f"s3://{self.bucket}/{self.prefix}"
