"""Backup storage: one small interface over a local directory and an S3 bucket.

Paths are ``/``-separated and relative to the storage's root (``local:///srv/backups`` or
``s3://bucket/prefix``); ``..``, absolute paths and empty segments are refused, so nothing outside the
root is ever read, written or deleted. Listing is by key prefix (as S3 does it), sorted by path.

Writes refuse to overwrite unless asked: a manifest or a lock is written once. Locally a write lands in
a temporary file first and is linked into place, so a reader never sees half a file; on S3 the put is
conditional (``If-None-Match: *``) where the server supports it, after an existence check.

boto3 is imported only when an S3 storage is built. Credentials are passed to boto3 and never kept in
URIs, printed or put into error messages.
"""

from __future__ import annotations

import builtins
import io
import os
import re
import secrets
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol, runtime_checkable

from tidbops.errors import TiDBOpsError
from tidbops.redact import redact

_TMP_MARK = ".tidbops-tmp-"
_S3_MAX_BATCH = 1000  # S3's most keys per ListObjectsV2 page and per DeleteObjects request


class StorageError(TiDBOpsError):
    """A storage operation failed (bad URI or path, unreachable bucket, permission)."""


class ObjectExistsError(StorageError):
    """A write without ``overwrite=True`` found the object already there."""


class ObjectNotFoundError(StorageError):
    """The object to read does not exist."""


@dataclass(frozen=True)
class ObjectInfo:
    path: str  # relative to the storage root, '/'-separated
    size: int


@runtime_checkable
class Storage(Protocol):
    """A place backups live. Every path is relative to ``uri``."""

    @property
    def uri(self) -> str:
        """``local:///abs/path`` or ``s3://bucket/prefix``: the root, without credentials."""
        ...

    def child(self, prefix: str) -> Storage:
        """The same storage rooted at ``prefix`` (a backup's own directory, say)."""
        ...

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        """Every object whose path starts with ``prefix``, sorted by path."""
        ...

    def list_dirs(self, prefix: str = "") -> builtins.list[str]:
        """The names of the immediate sub-directories of directory ``prefix`` (``''`` = the root), sorted."""
        ...

    def read_bytes(self, path: str) -> bytes: ...

    def open_read(self, path: str) -> BinaryIO:
        """A streaming reader; close it (``with storage.open_read(p) as f``)."""
        ...

    def write_bytes(self, path: str, data: bytes, overwrite: bool = False) -> None:
        """Write an object; raises ``ObjectExistsError`` when it exists and ``overwrite`` is false."""
        ...

    def exists(self, path: str) -> bool: ...

    def delete(self, paths: Iterable[str]) -> int:
        """Delete these objects (missing ones are skipped); returns how many were asked for."""
        ...


def clean_path(path: str, *, allow_empty: bool = False) -> str:
    """A safe relative path: not absolute, no '..', '.' or empty segments, no backslash or NUL."""
    if path == "":
        if allow_empty:
            return ""
        raise StorageError("an empty storage path")
    if path.startswith("/") or "\\" in path or "\x00" in path:
        raise StorageError(f"{path!r} is not a relative storage path")
    if any(part in ("", ".", "..") for part in path.split("/")):
        raise StorageError(f"{path!r} is not a clean relative storage path (no empty, '.' or '..' segments)")
    return path


def _dir_arg(prefix: str) -> str:
    """A directory argument: '' is the root; a trailing '/' is allowed."""
    return clean_path(prefix.rstrip("/"), allow_empty=True) if prefix.strip("/") else ""


def _may_hold(dir_rel: str, prefix: str) -> bool:
    """Whether files below directory ``dir_rel`` can have paths starting with ``prefix``."""
    d = dir_rel + "/"
    return d.startswith(prefix) or prefix.startswith(d)


def _join(*parts: str) -> str:
    return "/".join(p for p in parts if p)


def _prefix_arg(prefix: str) -> str:
    """A listing prefix keeps its trailing '/' (it means: inside that directory)."""
    if prefix == "":
        return ""
    trailing = prefix.endswith("/")
    cleaned = clean_path(prefix.rstrip("/"))
    return cleaned + ("/" if trailing else "")


# ---------------------------------------------------------------------------------------------- local


class LocalStorage:
    """A directory on a local or shared file system (``local:///path``)."""

    def __init__(self, root: Path) -> None:
        if not root.is_absolute():
            raise StorageError(f"{root} is not an absolute path; local storage needs one")
        self.root = root

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    @property
    def uri(self) -> str:
        return f"local://{self.root.as_posix()}"

    def child(self, prefix: str) -> LocalStorage:
        return LocalStorage(self.root / clean_path(prefix.rstrip("/")))

    def _abs(self, path: str) -> Path:
        return self.root / clean_path(path)

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        pfx = _prefix_arg(prefix)
        base_dir = pfx.rsplit("/", 1)[0] if "/" in pfx else ""
        start = self.root / base_dir if base_dir else self.root
        if not start.is_dir():
            return []
        found: list[ObjectInfo] = []
        for dirpath, dirnames, filenames in os.walk(start):
            rel_dir = Path(dirpath).relative_to(self.root).as_posix()
            rel_dir = "" if rel_dir == "." else rel_dir
            dirnames[:] = [d for d in dirnames if _may_hold(_join(rel_dir, d), pfx)]
            for name in filenames:
                if _TMP_MARK in name:
                    continue  # a write in progress
                rel = _join(rel_dir, name)
                if not rel.startswith(pfx):
                    continue
                st = os.lstat(os.path.join(dirpath, name))
                if stat.S_ISREG(st.st_mode):
                    found.append(ObjectInfo(rel, st.st_size))
        return sorted(found, key=lambda o: o.path)

    def list_dirs(self, prefix: str = "") -> builtins.list[str]:
        sub = _dir_arg(prefix)
        d = self.root / sub if sub else self.root
        if not d.is_dir():
            return []
        return sorted(e.name for e in d.iterdir() if e.is_dir() and not e.is_symlink())

    def read_bytes(self, path: str) -> bytes:
        try:
            return self._abs(path).read_bytes()
        except FileNotFoundError:
            raise ObjectNotFoundError(f"{self.uri}/{clean_path(path)} does not exist") from None
        except OSError as exc:
            raise StorageError(f"cannot read {self.uri}/{clean_path(path)}: {exc.strerror or exc}") from exc

    def open_read(self, path: str) -> BinaryIO:
        try:
            return open(self._abs(path), "rb")  # the caller closes it
        except FileNotFoundError:
            raise ObjectNotFoundError(f"{self.uri}/{clean_path(path)} does not exist") from None
        except OSError as exc:
            raise StorageError(f"cannot read {self.uri}/{clean_path(path)}: {exc.strerror or exc}") from exc

    def write_bytes(self, path: str, data: bytes, overwrite: bool = False) -> None:
        target = self._abs(path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}{_TMP_MARK}{os.getpid()}-{secrets.token_hex(4)}")
            with open(tmp, "xb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            try:
                if overwrite:
                    os.replace(tmp, target)
                else:
                    os.link(tmp, target)  # atomic: fails when the target exists
            finally:
                tmp.unlink(missing_ok=True)
        except FileExistsError:
            raise ObjectExistsError(f"{self.uri}/{clean_path(path)} exists; refusing to overwrite it") from None
        except OSError as exc:
            raise StorageError(f"cannot write {self.uri}/{clean_path(path)}: {exc.strerror or exc}") from exc

    def exists(self, path: str) -> bool:
        return self._abs(path).is_file()

    def delete(self, paths: Iterable[str]) -> int:
        count = 0
        dirs: set[Path] = set()
        for path in paths:
            target = self._abs(path)
            try:
                target.unlink(missing_ok=True)
            except IsADirectoryError:
                raise StorageError(f"{self.uri}/{clean_path(path)} is a directory, not an object") from None
            except OSError as exc:
                raise StorageError(f"cannot delete {self.uri}/{clean_path(path)}: {exc.strerror or exc}") from exc
            dirs.add(target.parent)
            count += 1
        self._prune(dirs)
        return count

    def _prune(self, dirs: set[Path]) -> None:
        """Remove directories the deletes left empty, up to (not including) the root: S3 has no empty dirs."""
        for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
            while d != self.root and self.root in d.parents:
                try:
                    d.rmdir()
                except OSError:
                    break  # not empty (or gone)
                d = d.parent


# ------------------------------------------------------------------------------------------------- s3


class _S3Raw(io.RawIOBase):
    """botocore's streaming body as a raw file, so that callers get an ordinary buffered reader."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        chunk: bytes = self._body.read(len(view))
        view[: len(chunk)] = chunk
        return len(chunk)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


def _client_error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


class S3Storage:
    """An S3 bucket and key prefix (``s3://bucket/prefix``), through a boto3 S3 client.

    ``batch_size``: keys per listing page and per delete request (S3 allows at most 1000; some
    S3-compatible servers fewer).
    """

    def __init__(self, bucket: str, prefix: str, client: Any, *, batch_size: int = _S3_MAX_BATCH) -> None:
        if not 1 <= batch_size <= _S3_MAX_BATCH:
            raise ValueError(f"batch_size must be 1 to {_S3_MAX_BATCH}, not {batch_size}")
        self.bucket = bucket
        self.prefix = clean_path(prefix, allow_empty=True)
        self.batch_size = batch_size
        self._client = client

    def __repr__(self) -> str:
        return f"S3Storage({self.uri!r})"

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def child(self, prefix: str) -> S3Storage:
        sub = _join(self.prefix, clean_path(prefix.rstrip("/")))
        return S3Storage(self.bucket, sub, self._client, batch_size=self.batch_size)

    def _key(self, path: str) -> str:
        return _join(self.prefix, clean_path(path))

    def _fail(self, what: str, path: str, exc: Exception) -> StorageError:
        code = _client_error_code(exc)
        if code:
            return StorageError(f"cannot {what} {self.uri}/{path}: {code}")
        names = {c.__name__ for c in type(exc).__mro__}
        if names & {"ConnectionError", "HTTPClientError"}:  # no answer: refused, timed out, reset
            endpoint = getattr(getattr(self._client, "meta", None), "endpoint_url", None) or "?"
            reason = str(exc).split(":", 1)[0]  # botocore's text names the endpoint URL, never the keys
            return StorageError(
                f"cannot {what} {self.uri}/{path}: the S3 endpoint {endpoint} does not answer ({reason})"
            )
        return StorageError(f"cannot {what} {self.uri}/{path}: {type(exc).__name__}: {exc}")

    def _pages(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        try:
            paginator = self._client.get_paginator("list_objects_v2")
            yield from paginator.paginate(Bucket=self.bucket, PaginationConfig={"PageSize": self.batch_size}, **kwargs)
        except Exception as exc:
            if _is_boto_error(exc):
                key = str(kwargs.get("Prefix", ""))
                root = f"{self.prefix}/" if self.prefix else ""
                raise self._fail("list", key[len(root) :] if key.startswith(root) else key, exc) from exc
            raise

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        pfx = _prefix_arg(prefix)
        root = f"{self.prefix}/" if self.prefix else ""
        found: list[ObjectInfo] = []
        for page in self._pages(Prefix=root + pfx):
            for obj in page.get("Contents", []):
                key: str = obj["Key"]
                if key.endswith("/"):
                    continue  # a "directory marker" some tools write
                found.append(ObjectInfo(key[len(root) :], int(obj["Size"])))
        return sorted(found, key=lambda o: o.path)

    def list_dirs(self, prefix: str = "") -> builtins.list[str]:
        base = _join(self.prefix, _dir_arg(prefix))
        root = f"{base}/" if base else ""
        names: list[str] = []
        for page in self._pages(Prefix=root, Delimiter="/"):
            for cp in page.get("CommonPrefixes", []):
                names.append(cp["Prefix"][len(root) :].rstrip("/"))
        return sorted(n for n in names if n)

    def read_bytes(self, path: str) -> bytes:
        with self.open_read(path) as fh:
            return fh.read()

    def open_read(self, path: str) -> BinaryIO:
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=self._key(path))
        except Exception as exc:
            if _client_error_code(exc) in ("NoSuchKey", "404", "NotFound"):
                raise ObjectNotFoundError(f"{self.uri}/{clean_path(path)} does not exist") from None
            if _is_boto_error(exc):
                raise self._fail("read", clean_path(path), exc) from exc
            raise
        return io.BufferedReader(_S3Raw(response["Body"]), buffer_size=1 << 20)

    def write_bytes(self, path: str, data: bytes, overwrite: bool = False) -> None:
        key = self._key(path)
        extra: dict[str, str] = {}
        if not overwrite:
            if self.exists(path):
                raise ObjectExistsError(f"{self.uri}/{clean_path(path)} exists; refusing to overwrite it")
            extra["IfNoneMatch"] = "*"  # closes the race where the server supports conditional writes
        try:
            self._client.put_object(Bucket=self.bucket, Key=key, Body=data, **extra)
        except Exception as exc:
            if _client_error_code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                raise ObjectExistsError(f"{self.uri}/{clean_path(path)} exists; refusing to overwrite it") from None
            if _is_boto_error(exc):
                raise self._fail("write", clean_path(path), exc) from exc
            raise

    def exists(self, path: str) -> bool:
        try:
            self._client.head_object(Bucket=self.bucket, Key=self._key(path))
        except Exception as exc:
            if _client_error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return False
            if _is_boto_error(exc):
                raise self._fail("check", clean_path(path), exc) from exc
            raise
        return True

    def delete(self, paths: Iterable[str]) -> int:
        keys = [self._key(p) for p in paths]
        for start in range(0, len(keys), self.batch_size):
            batch = keys[start : start + self.batch_size]
            try:
                response = self._client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
                )
            except Exception as exc:
                if _is_boto_error(exc):
                    raise self._fail("delete objects in", self.prefix, exc) from exc
                raise
            errors = response.get("Errors") or []
            if errors:
                first = errors[0]
                raise StorageError(
                    f"cannot delete {len(errors)} object(s) in {self.uri}, "
                    f"e.g. {first.get('Key')}: {first.get('Code')} {first.get('Message', '')}".rstrip()
                )
        return len(keys)


def _is_boto_error(exc: Exception) -> bool:
    return type(exc).__module__.startswith(("botocore", "boto3"))


# ------------------------------------------------------------------------------------------------ uri

ENDPOINT_FORMAT = "http(s)://host[:port][/path], e.g. http://minio:9000 (keys go in AWS_* or the connection)"


def check_endpoint(endpoint: str) -> str:
    """``endpoint`` when it is an S3 endpoint URL BR and boto3 can use; ``StorageError`` saying why not.

    Credentials are refused in it (they would reach logs and argv); the text shown is redacted.
    """
    from urllib.parse import urlsplit

    shown = redact(endpoint)
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in endpoint):
        raise StorageError(f"S3 endpoint {shown!r} contains whitespace or a control character; use {ENDPOINT_FORMAT}")
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError as exc:
        raise StorageError(f"S3 endpoint {shown!r} is not a URL ({exc}); use {ENDPOINT_FORMAT}") from None
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise StorageError(
            f"S3 endpoint {shown!r} carries a user or password; credentials never go in URLs: pass them "
            "as AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or in the storage connection"
        )
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise StorageError(f"S3 endpoint {shown!r} is not an endpoint URL; use {ENDPOINT_FORMAT}")
    if port == 0:
        raise StorageError(f"S3 endpoint {shown!r} has port 0; use a port in 1-65535")
    return endpoint


_S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(?P<prefix>.*))?$")


_DATA_LOADERS: dict[str, Any] = {}  # botocore data path -> the loader every session of this process uses


def share_botocore_data(session: Any) -> None:
    """Give a boto3 ``session`` this process's botocore data loader (one per data path).

    Each boto3 session builds a loader of its own and reads S3's service model and endpoint rules again
    for its first client (0.1 s, more on a busy host), and the amazon provider makes a new session for
    every hook: two or three per drill task that touches storage. The loader only reads botocore's
    JSON data files and keeps them; shared, they are read once per process (and once in a warm parent
    for its forked workers: ``tidbops_plugin.warm_imports``). Credentials, region and configuration stay
    the session's own."""
    core = getattr(session, "_session", None)  # boto3's Session wraps a botocore one
    if core is None:
        return
    path = str(core.get_config_variable("data_path"))
    shared = _DATA_LOADERS.get(path)
    if shared is None:
        _DATA_LOADERS[path] = core.get_component("data_loader")
    elif core.get_component("data_loader") is not shared:
        core.register_component("data_loader", shared)


def storage_from_uri(
    uri: str,
    *,
    endpoint: str | None = None,
    region: str | None = None,
    session: Any | None = None,
    config: Any | None = None,
    verify: bool | str | None = None,
) -> Storage:
    """A ``Storage`` for ``local:///abs/path`` or ``s3://bucket/prefix``.

    For S3 the credentials come from ``session``, a ready boto3 ``Session`` (in Airflow: the amazon
    provider's, built from the storage connection: static keys, assume-role, profile, web identity).
    Without one, boto3's own chain is used (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/
    ``AWS_SESSION_TOKEN``, ``AWS_PROFILE`` and the config files, web identity, the instance role): the
    CLI's way. This module reads no connection and no credential itself. ``endpoint`` and ``region`` are
    already decided by the caller (region default: the session's, else us-east-1). The client is
    path-style with standard retries, as MinIO and other S3-compatible servers need; ``config`` (a
    botocore ``Config``, e.g. the connection's ``config_kwargs``) wins over those defaults. Query
    parameters in the URI are refused: credentials never travel in URIs.
    """
    if "?" in uri:
        raise StorageError("storage URIs take no query parameters here; pass endpoint and keys separately")
    if re.match(r"^[A-Za-z0-9+.-]+://[^/]*@", uri):
        raise StorageError("storage URIs take no user or password here; pass the keys separately")
    if endpoint is not None:
        check_endpoint(endpoint)
    if uri.startswith("local://"):
        path = uri[len("local://") :]
        if not path.startswith("/"):
            raise StorageError(f"{uri!r} is not a local storage URI; use local:///absolute/path")
        return LocalStorage(Path(path.rstrip("/") or "/"))
    m = _S3_URI.match(uri.rstrip("/"))
    if not m:
        raise StorageError(f"{uri!r} is not a storage URI; use s3://bucket/prefix or local:///absolute/path")
    import boto3  # type: ignore[import-untyped]  # lazy: only S3 users pay for it
    from botocore.config import Config  # type: ignore[import-untyped]

    if session is None:
        session = boto3.session.Session()
    share_botocore_data(session)
    client_config = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5, "mode": "standard"})
    if config is not None:
        client_config = client_config.merge(config)
    client = session.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region or session.region_name or "us-east-1",
        config=client_config,
        verify=verify,
    )
    return S3Storage(m.group("bucket"), m.group("prefix") or "", client)
