"""External storage: ``local:///abs/path`` (also a bare path), ``s3://bucket/prefix`` and ``noop://``.

S3 options come from the URL query (``access-key``, ``secret-access-key``, ``session-token``, ``endpoint``,
``region``, ``force-path-style``, ``storage-class``, ``sse``, ``sse-kms-key-id``, ``acl``, ...) which
override the ``--s3.*`` flags, as in BR's ``ParseBackend``. Credentials fall back to
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``. Addressing is path-style. Secrets never reach the log:
``redact_url`` drops the query string, as BR's ``LogArguments`` and ``FormatBackendURL`` do.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .errors import BRError, br_error, plain

_S3_QUERY_KEYS = {
    "access-key": "access_key",
    "secret-access-key": "secret_key",
    "session-token": "session_token",
    "endpoint": "endpoint",
    "region": "region",
    "force-path-style": "force_path_style",
    "storage-class": "storage_class",
    "sse": "sse",
    "sse-kms-key-id": "sse_kms_key_id",
    "acl": "acl",
    "provider": "provider",
    "role-arn": "role_arn",
    "external-id": "external_id",
    "use-accelerate-endpoint": "use_accelerate",
}


@dataclass
class S3Options:
    endpoint: str = ""
    region: str = ""
    storage_class: str = ""
    sse: str = ""
    sse_kms_key_id: str = ""
    acl: str = ""
    provider: str = ""
    role_arn: str = ""
    external_id: str = ""
    access_key: str = ""
    secret_key: str = ""
    session_token: str = ""
    force_path_style: str = "true"
    use_accelerate: str = "false"

    def __repr__(self) -> str:  # never show secrets
        return f"S3Options(endpoint={self.endpoint!r}, region={self.region!r})"


@dataclass
class Backend:
    """A parsed ``--storage`` URL (``backuppb.StorageBackend``)."""

    kind: str  # local | s3 | noop
    path: str = ""  # local: absolute dir
    bucket: str = ""
    prefix: str = ""
    s3: S3Options = field(default_factory=S3Options)

    @property
    def uri(self) -> str:
        """``ExternalStorage.URI()`` — what BR prints in messages."""
        if self.kind == "local":
            return "local://" + self.path
        if self.kind == "s3":
            return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}/"
        return "noop:///"

    def to_json(self) -> dict[str, Any]:
        """Persisted with a log task (PD state, mode 0600) so the advancer can write — includes credentials,
        like the ``StorageBackend`` BR sends to TiKV with ``--send-credentials-to-tikv``."""
        return {
            "kind": self.kind,
            "path": self.path,
            "bucket": self.bucket,
            "prefix": self.prefix,
            "s3": dict(self.s3.__dict__),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Backend:
        return cls(
            kind=data["kind"],
            path=data.get("path", ""),
            bucket=data.get("bucket", ""),
            prefix=data.get("prefix", ""),
            s3=S3Options(**data.get("s3", {})),
        )


def redact_url(raw: str) -> str:
    """BR's ``flagToZapField`` for storage flags: the URL without its query (secrets live there)."""
    try:
        parts = urlsplit(raw)
    except ValueError:
        return "<invalid URI>"
    return parts._replace(query="", fragment="").geturl()


def parse_backend(raw: str, flag_s3: S3Options | None = None, send_credentials: bool = True) -> Backend:
    """``storage.ParseBackend``."""
    if raw == "":
        raise br_error("ErrStorageInvalidConfig", "empty store is not allowed")
    try:
        u = urlsplit(raw)
    except ValueError as exc:
        raise plain(f'parse "{redact_url(raw)}": {exc}') from None
    scheme = u.scheme.lower()
    if scheme == "":
        return Backend("local", path=os.path.abspath(raw))
    if scheme in ("local", "file"):
        path = u.path or "/"
        return Backend("local", path=os.path.normpath(path) if path != "/" else "/")
    if scheme == "noop":
        return Backend("noop")
    if scheme == "s3":
        if not u.netloc:
            raise br_error("ErrStorageInvalidConfig", "please specify the bucket for s3 in " + redact_url(raw))
        opts = S3Options(**dict((flag_s3 or S3Options()).__dict__))
        for key, values in parse_qs(u.query, keep_blank_values=True).items():
            attr = _S3_QUERY_KEYS.get(key)
            if attr and values:
                setattr(opts, attr, values[-1])
        if opts.access_key and not opts.secret_key:
            raise br_error("ErrStorageInvalidConfig", "secret_access_key not found")
        if opts.secret_key and not opts.access_key:
            raise br_error("ErrStorageInvalidConfig", "access_key not found")
        if not opts.access_key and send_credentials:
            opts.access_key = os.environ.get("AWS_ACCESS_KEY_ID", "")
            opts.secret_key = os.environ.get("AWS_SECRET_ACCESS_KEY", "")
            opts.session_token = opts.session_token or os.environ.get("AWS_SESSION_TOKEN", "")
        return Backend("s3", bucket=u.netloc, prefix=u.path.strip("/"), s3=opts)
    raise br_error("ErrStorageInvalidConfig", f"storage {u.scheme} not support yet")


class WriteFault:
    """``storage_write_error``: fail every write after ``after`` successful ones."""

    def __init__(self, after: int) -> None:
        self.remaining = after

    def check(self, uri: str, name: str) -> None:
        if self.remaining > 0:
            self.remaining -= 1
            return
        raise br_error(
            "ErrStorageUnknown",
            f"failed to write {uri.rstrip('/')}/{name}: "
            "I/O error (injected by the playground fault storage_write_error)",
        )


class ExternalStorage:
    """The subset of BR's ``storage.ExternalStorage`` the emulator needs."""

    def __init__(self, backend: Backend, write_fault: WriteFault | None = None) -> None:
        self.backend = backend
        self.write_fault = write_fault
        self.bytes_written = 0
        self._s3: Any = None
        if backend.kind == "local":
            try:
                os.makedirs(backend.path, exist_ok=True)
            except OSError as exc:
                raise plain(
                    f"create storage failed: mkdir {backend.path}: {(exc.strerror or str(exc)).lower()}"
                ) from None
        elif backend.kind == "s3":
            self._connect_s3()

    # ------------------------------------------------------------------ s3 plumbing
    def _connect_s3(self) -> None:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError

        o = self.backend.s3
        kwargs: dict[str, Any] = {
            "region_name": o.region or "us-east-1",
            "config": Config(
                s3={"addressing_style": "path" if o.force_path_style != "false" else "auto"},
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=60,
            ),
        }
        if o.endpoint:
            kwargs["endpoint_url"] = o.endpoint if "://" in o.endpoint else "https://" + o.endpoint
        if o.access_key:
            kwargs["aws_access_key_id"] = o.access_key
            kwargs["aws_secret_access_key"] = o.secret_key
            if o.session_token:
                kwargs["aws_session_token"] = o.session_token
        self._s3 = boto3.client("s3", **kwargs)
        try:
            self._s3.head_bucket(Bucket=self.backend.bucket)
        except ClientError as exc:
            err = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
            code = {"404": "NotFound", "403": "Forbidden", "301": "BucketRegionError"}.get(
                str(err.get("Code", "")), err.get("Code", "Unknown")
            )
            raise br_error(
                "ErrStorageInvalidConfig",
                f"create storage failed: Bucket {self.backend.bucket} is not accessible: "
                f"{code}: {err.get('Message', 'Not Found')}\n\tstatus code: {status}",
            ) from None
        except BotoCoreError as exc:
            raise br_error(
                "ErrStorageInvalidConfig",
                f"create storage failed: Bucket {self.backend.bucket} is not accessible: {_boto_text(exc)}",
            ) from None

    def _key(self, name: str) -> str:
        return f"{self.backend.prefix}/{name}" if self.backend.prefix else name

    def _s3_error(self, op: str, name: str, exc: Exception) -> BRError:
        from botocore.exceptions import ClientError

        if isinstance(exc, ClientError):
            err = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
            detail = f"{err.get('Code', 'Unknown')}: {err.get('Message', '')}\n\tstatus code: {status}"
        else:
            detail = _boto_text(exc)
        return br_error(
            "ErrStorageUnknown",
            f"failed to {op} s3 file, file info: input.bucket='{self.backend.bucket}', "
            f"input.key='{self._key(name)}': {detail}",
        )

    # ------------------------------------------------------------------ API
    @property
    def uri(self) -> str:
        return self.backend.uri

    def _local(self, name: str) -> str:
        return os.path.join(self.backend.path, name)

    def write_file(self, name: str, data: bytes) -> None:
        if self.write_fault is not None:
            self.write_fault.check(self.uri, name)
        kind = self.backend.kind
        if kind == "noop":
            return
        if kind == "local":
            path = self._local(name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path}.tmp.{uuid.uuid4()}"
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        else:
            o = self.backend.s3
            extra: dict[str, Any] = {}
            if o.sse:
                extra["ServerSideEncryption"] = o.sse
            if o.sse_kms_key_id:
                extra["SSEKMSKeyId"] = o.sse_kms_key_id
            if o.storage_class:
                extra["StorageClass"] = o.storage_class
            if o.acl:
                extra["ACL"] = o.acl
            try:
                self._s3.put_object(Bucket=self.backend.bucket, Key=self._key(name), Body=data, **extra)
            except Exception as exc:
                raise self._s3_error("put", name, exc) from None
        self.bytes_written += len(data)

    def read_file(self, name: str) -> bytes:
        kind = self.backend.kind
        if kind == "local":
            try:
                with open(self._local(name), "rb") as fh:
                    return fh.read()
            except OSError as exc:
                raise plain(f"open {self._local(name)}: {(exc.strerror or str(exc)).lower()}") from None
        if kind == "noop":
            raise plain(f"open {name}: no such file or directory")
        try:
            resp = self._s3.get_object(Bucket=self.backend.bucket, Key=self._key(name))
            return bytes(resp["Body"].read())
        except Exception as exc:
            raise self._s3_error("read", name, exc) from None

    def file_exists(self, name: str) -> bool:
        kind = self.backend.kind
        if kind == "local":
            return os.path.isfile(self._local(name))
        if kind == "noop":
            return False
        from botocore.exceptions import ClientError

        try:
            self._s3.head_object(Bucket=self.backend.bucket, Key=self._key(name))
            return True
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                return False
            raise self._s3_error("head", name, exc) from None

    def delete_file(self, name: str) -> None:
        kind = self.backend.kind
        if kind == "local":
            try:
                os.remove(self._local(name))
            except FileNotFoundError:
                pass
        elif kind == "s3":
            try:
                self._s3.delete_object(Bucket=self.backend.bucket, Key=self._key(name))
            except Exception as exc:
                raise self._s3_error("delete", name, exc) from None

    def remove_empty_dirs(self, sub_dir: str) -> None:
        """Local storage only: drop directories left empty under ``sub_dir`` (and ``sub_dir`` itself)."""
        if self.backend.kind != "local":
            return
        base = os.path.join(self.backend.path, sub_dir)
        if not os.path.isdir(base):
            return
        for dirpath, _dirs, _files in sorted(os.walk(base), key=lambda x: -len(x[0])):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass
        parent = os.path.dirname(base.rstrip("/"))
        while parent.startswith(self.backend.path) and parent != self.backend.path.rstrip("/"):
            try:
                os.rmdir(parent)
            except OSError:
                break
            parent = os.path.dirname(parent)

    def walk(self, sub_dir: str = "") -> Iterator[tuple[str, int]]:
        """``WalkDir``: (path relative to the storage root, size) of every object under ``sub_dir``."""
        kind = self.backend.kind
        if kind == "local":
            base = os.path.join(self.backend.path, sub_dir) if sub_dir else self.backend.path
            if not os.path.isdir(base):
                return
            for dirpath, _dirs, files in os.walk(base):
                for fname in sorted(files):
                    full = os.path.join(dirpath, fname)
                    rel = os.path.relpath(full, self.backend.path)
                    try:
                        size = os.path.getsize(full)
                    except OSError:
                        continue
                    yield rel.replace(os.sep, "/"), size
        elif kind == "s3":
            prefix = (
                self._key(sub_dir.rstrip("/") + "/")
                if sub_dir
                else (self.backend.prefix + "/" if self.backend.prefix else "")
            )
            strip = len(self.backend.prefix) + 1 if self.backend.prefix else 0
            token: str | None = None
            while True:
                kwargs: dict[str, Any] = {"Bucket": self.backend.bucket, "Prefix": prefix}
                if token:
                    kwargs["ContinuationToken"] = token
                try:
                    resp = self._s3.list_objects_v2(**kwargs)
                except Exception as exc:
                    raise self._s3_error("list", sub_dir, exc) from None
                for obj in resp.get("Contents", []):
                    yield obj["Key"][strip:], int(obj["Size"])
                if not resp.get("IsTruncated"):
                    break
                token = resp.get("NextContinuationToken")


def _boto_text(exc: Exception) -> str:
    name = type(exc).__name__
    if name == "NoCredentialsError":
        return "NoCredentialProviders: no valid providers in chain. Deprecated."
    return f"RequestError: send request failed\ncaused by: {exc}"


def open_storage(
    raw: str, flag_s3: S3Options | None = None, send_credentials: bool = True, write_fault: WriteFault | None = None
) -> ExternalStorage:
    return ExternalStorage(parse_backend(raw, flag_s3, send_credentials), write_fault)
