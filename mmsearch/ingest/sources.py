"""Folders to index that live on object storage (s3://bucket/prefix): listing and reading through pyarrow's
filesystems, with the same FileEntry a local walk yields (size, and LastModified as mtime), so the incremental
plan (ingest/plan.py) is the same for both. Local paths go to media.files."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Collection, Iterator, Mapping

from mmsearch.errors import BadMedia, MMSearchError
from mmsearch.location import is_uri, object_store_options, parse_location
from mmsearch.media.files import FileEntry, OnError, iter_media_files


def list_media(root: str | Path, on_error: OnError | None, extensions: Collection[str],
               options: Mapping[str, str] | None = None) -> Iterator[FileEntry]:
    """Every file with one of the extensions under root, a local folder or an object-store prefix."""
    if not is_uri(str(root)):
        yield from iter_media_files(Path(root), on_error, extensions)
        return
    from pyarrow import fs as pafs

    filesystem, base = _filesystem(str(root), options or {})
    scheme = str(root).split("://", 1)[0]
    exts = frozenset(extensions)
    try:
        infos = filesystem.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
    except OSError as exc:
        raise MMSearchError(f"cannot list {root}: {exc}") from None
    for info in sorted(infos, key=lambda i: i.path):
        name = info.path.rsplit("/", 1)[-1]
        if info.type == pafs.FileType.File and not name.startswith(".") and _ext(name) in exts:
            yield FileEntry(f"{scheme}://{info.path}", int(info.size), int(info.mtime_ns or 0))


def check_source(root: str, options: Mapping[str, str] | None = None) -> str:
    """The root as stored (scheme://bucket/prefix); an unreachable or empty location fails here, before any work."""
    location = parse_location(root)
    from pyarrow import fs as pafs

    filesystem, base = _filesystem(location.uri, options or {})
    try:
        kind = filesystem.get_file_info(base).type
    except OSError as exc:
        raise MMSearchError(f"cannot index {root}: {exc}") from None
    if kind == pafs.FileType.NotFound:
        raise MMSearchError(f"cannot index {root}: no such object or prefix")
    return location.uri


def read_bytes(path: str, options: Mapping[str, str] | None = None) -> bytes:
    filesystem, key = _filesystem(path, options or {})
    try:
        with filesystem.open_input_stream(key) as fh:
            return fh.read()
    except OSError as exc:
        raise BadMedia(path, f"cannot read ({exc})") from None


def _ext(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:].lower() if dot >= 0 else ""


def _filesystem(uri: str, options: Mapping[str, str]) -> tuple[object, str]:
    scheme, rest = uri.split("://", 1)
    merged = object_store_options(options)
    return _cached_fs(scheme, tuple(sorted(merged.items()))), rest.rstrip("/")


@lru_cache(maxsize=16)
def _cached_fs(scheme: str, options: tuple[tuple[str, str], ...]) -> object:
    from pyarrow import fs as pafs

    opts = dict(options)
    if scheme != "s3":
        return pafs.FileSystem.from_uri(f"{scheme}://")[0]
    endpoint = opts.get("aws_endpoint", "")
    kwargs = {k: opts[o] for k, o in (("access_key", "aws_access_key_id"), ("secret_key", "aws_secret_access_key"),
                                      ("session_token", "aws_session_token"), ("region", "aws_region")) if o in opts}
    if endpoint:
        kwargs["scheme"], _, kwargs["endpoint_override"] = endpoint.partition("://") if "://" in endpoint \
            else ("https", "", endpoint)
    return pafs.S3FileSystem(**kwargs)
