"""Where a library (or a folder to index) lives: a local folder, file://, or an object store (s3://, gs://, az://).

Object-store credentials and endpoints come from `--storage-option KEY=VALUE` and the standard AWS_* variables;
they travel in `storage_options` to LanceDB and pyarrow and are never written to the library's metadata or logs
(Location keeps them out of its repr).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping
from urllib.parse import unquote, urlparse

from mmsearch.errors import MMSearchError

OBJECT_SCHEMES = ("s3", "gs", "az")

# The standard AWS variables, as the option names Lance's object store takes (AWS_ENDPOINT_URL is boto's
# name for a custom endpoint, e.g. a moto or MinIO server).
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "aws_access_key_id",
    "AWS_SECRET_ACCESS_KEY": "aws_secret_access_key",
    "AWS_SESSION_TOKEN": "aws_session_token",
    "AWS_ENDPOINT_URL": "aws_endpoint",
    "AWS_ENDPOINT_URL_S3": "aws_endpoint",
    "AWS_REGION": "aws_region",
    "AWS_DEFAULT_REGION": "aws_region",
}


class BadLocation(MMSearchError):
    """A --data-dir, folder URI or --storage-option that mmsearch cannot use."""


@dataclass(frozen=True)
class Location:
    uri: str  # an absolute local path, or scheme://bucket/prefix without a trailing slash
    storage_options: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def remote(self) -> bool:
        return scheme_of(self.uri) in OBJECT_SCHEMES

    @property
    def local(self) -> Path | None:
        return None if self.remote else Path(self.uri)

    def join(self, *parts: str) -> str:
        return "/".join([self.uri.rstrip("/"), *parts]) if self.remote else str(Path(self.uri, *parts))

    def __str__(self) -> str:
        return self.uri


def scheme_of(value: str) -> str:
    m = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://", value)
    return m.group(1).lower() if m else ""


def is_uri(value: str | Path) -> bool:
    return isinstance(value, str) and scheme_of(value) != ""


def parse_location(value: str | Path, storage_options: Mapping[str, str] | None = None) -> Location:
    """A local path (~ expanded), file:///abs/path, or s3://bucket[/prefix] (also gs://, az://)."""
    text = str(value) if isinstance(value, Path) else value
    scheme = scheme_of(text)
    if not scheme:
        return Location(str(Path(text).expanduser().resolve()))
    if scheme == "file":
        parsed = urlparse(text)
        if parsed.netloc not in ("", "localhost"):
            raise BadLocation(f"{text}: a file:// URI names a local path (file:///abs/path), not host {parsed.netloc}")
        return Location(str(Path(unquote(parsed.path)).resolve()))
    if scheme not in OBJECT_SCHEMES:
        raise BadLocation(f"{text}: unsupported scheme {scheme}://; use a local path, file://, s3://, gs:// or az://")
    parsed = urlparse(text)
    if not parsed.netloc:
        raise BadLocation(f"{text}: name a bucket, e.g. {scheme}://bucket/prefix")
    uri = f"{scheme}://{parsed.netloc}" + ("/" + parsed.path.strip("/") if parsed.path.strip("/") else "")
    return Location(uri, dict(object_store_options(storage_options or {})))


def object_store_options(given: Mapping[str, str], env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The options for Lance/pyarrow: AWS_* variables first, then the given ones (which win)."""
    env = os.environ if env is None else env
    found = {opt: env[var] for var, opt in AWS_ENV.items() if env.get(var)}
    found.update({k: str(v) for k, v in given.items()})
    endpoint = found.get("aws_endpoint", "")
    if endpoint.startswith("http://"):
        found.setdefault("allow_http", "true")  # a plain-HTTP endpoint (a local test server) needs saying so
    return found


def parse_storage_options(pairs: list[str] | tuple[str, ...]) -> dict[str, str]:
    """--storage-option KEY=VALUE, repeated."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise BadLocation(f"--storage-option {pair.split('=')[0]!r}: write it as KEY=VALUE, e.g. aws_region=eu-west-1")
        out[key.strip()] = value
    return out


def cache_dir_for(location: Location) -> Path:
    """A local folder for what a replica keeps on its own disk (thumbnails, the server record) for a remote library."""
    from platformdirs import user_cache_path

    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", location.uri)
    return user_cache_path("mmsearch") / "remote" / slug
