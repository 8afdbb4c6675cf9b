"""Owner-held keys: a fresh random data key for every backup, stored only wrapped with the owner's public key.

A cluster with ``br.encryption.mode: owner-key`` never has one crypter key for all its backups. Each
snapshot backup gets a fresh data key (``new_data_key``: random bytes of the length ``br.encryption.method``
needs, as the hex text BR reads from ``--crypter.key-file``). That key is wrapped (``wrap``) to the
owner's **age X25519** public key (``age1…``) and only the wrapped form, with the recipient's key id
(``key_id``: a fingerprint of the public key, never the key), goes into the backup's manifest and the
catalog. Airflow holds only the public key. A restore unwraps (``unwrap``) with the owner's private key
(``AGE-SECRET-KEY-1…``), which lives in a connection present only where restores run.

Why age X25519 (through ``pyrage``, the maintained binding of the Rust ``rage``) and not RSA-OAEP:
the wrapped key is a standard age file, so an owner can unwrap a backup's key with stock ``age -d`` and
``age-keygen`` keys, without tidbops (a disaster-recovery path that needs no Airflow); X25519 keys are one
short line (fit a fleet config or a connection field, unlike a PEM block); and age authenticates the
wrapped key (a wrong or damaged one fails loudly, never yields a wrong key).

The clear data key lives in memory and in the 0600 key file BR reads for the length of one BR session;
nothing here logs it, and ``DataKey``'s ``repr`` hides it.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyrage
from pyrage import x25519

from tidbops.errors import TiDBOpsError

if TYPE_CHECKING:
    from tidbops.config import ClusterConfig

KEY_BYTES = {"aes128-ctr": 16, "aes192-ctr": 24, "aes256-ctr": 32}
WRAP_SCHEME = "age-x25519"
_PUBLIC = re.compile(r"age1[02-9ac-hj-np-z]{58}")
_PRIVATE = re.compile(r"AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}")
_KEY_ID = re.compile(r"age:[0-9a-f]{16}")


class OwnerKeyError(TiDBOpsError):
    """An owner key is missing, malformed, or does not open a wrapped data key."""


@dataclass(frozen=True)
class DataKey:
    """A backup's clear data key (hex, as BR's ``--crypter.key-file`` holds it); its repr hides the key."""

    method: str
    hex: str = field(repr=False)

    def __post_init__(self) -> None:
        want = KEY_BYTES.get(self.method)
        if want is None:
            raise OwnerKeyError(f"crypter method {self.method!r} is not one of {', '.join(sorted(KEY_BYTES))}")
        if not re.fullmatch(rf"[0-9a-f]{{{2 * want}}}", self.hex):
            raise OwnerKeyError(f"a {self.method} data key is {want} bytes of lower-case hex")


@dataclass(frozen=True)
class WrappedKey:
    """A data key wrapped to one recipient: what the manifest and the catalog keep."""

    key_id: str  # the recipient public key's fingerprint (``key_id``)
    wrapped: str  # base64 of the age file
    scheme: str = WRAP_SCHEME

    def to_dict(self) -> dict[str, str]:
        return {"scheme": self.scheme, "key_id": self.key_id, "wrapped": self.wrapped}

    @classmethod
    def from_dict(cls, d: Any) -> WrappedKey:
        if not isinstance(d, dict):
            raise OwnerKeyError("a wrapped data key is an object with scheme, key_id and wrapped")
        scheme, key_id, wrapped = d.get("scheme"), d.get("key_id"), d.get("wrapped")
        if scheme != WRAP_SCHEME:
            raise OwnerKeyError(f"wrapped data key scheme {scheme!r} is not {WRAP_SCHEME!r}")
        if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
            raise OwnerKeyError(f"wrapped data key id {key_id!r} is not age:<16 hex>")
        if not isinstance(wrapped, str) or not wrapped or len(wrapped) > 4096:
            raise OwnerKeyError("the wrapped data key is empty or too long")
        return cls(key_id=key_id, wrapped=wrapped, scheme=scheme)


def _recipient(public_key: str) -> x25519.Recipient:
    text = public_key.strip()
    if not _PUBLIC.fullmatch(text):
        raise OwnerKeyError("an owner public key is an age X25519 recipient: 'age1' and 58 more characters")
    try:
        return x25519.Recipient.from_str(text)
    except Exception:  # pyrage raises its own ValueError subclasses; the text never holds a secret
        raise OwnerKeyError("the owner public key is not a valid age X25519 recipient") from None


def _identity(private_key: str) -> x25519.Identity:
    lines = [ln.strip() for ln in private_key.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    # an age-keygen file has comment lines (created, public key) and the one key line
    text = lines[0] if len(lines) == 1 else ""
    if not _PRIVATE.fullmatch(text):
        raise OwnerKeyError(
            "the owner private key is not an age X25519 identity ('AGE-SECRET-KEY-1…', as age-keygen writes it)"
        )
    try:
        return x25519.Identity.from_str(text)
    except Exception:
        raise OwnerKeyError("the owner private key is not a valid age X25519 identity") from None


def check_public_key(public_key: str) -> str:
    """The public key, stripped, when it is a valid age X25519 recipient; else ``OwnerKeyError``."""
    _recipient(public_key)
    return public_key.strip()


def key_id(public_key: str) -> str:
    """``age:<16 hex>``: the first 8 bytes of SHA-256 over the recipient text. Names a key, never is one."""
    return "age:" + hashlib.sha256(check_public_key(public_key).encode("ascii")).hexdigest()[:16]


def public_of(private_key: str) -> str:
    """The public key (recipient) of a private key."""
    return str(_identity(private_key).to_public())


def key_id_of_private(private_key: str) -> str:
    return key_id(public_of(private_key))


def new_data_key(method: str) -> DataKey:
    """A fresh random data key for one backup (``secrets.token_bytes``)."""
    if method not in KEY_BYTES:
        raise OwnerKeyError(f"crypter method {method!r} is not one of {', '.join(sorted(KEY_BYTES))}")
    return DataKey(method, secrets.token_bytes(KEY_BYTES[method]).hex())


def wrap(key: DataKey, public_key: str) -> WrappedKey:
    """``key`` wrapped to ``public_key`` (an age file, base64)."""
    sealed = pyrage.encrypt(key.hex.encode("ascii"), [_recipient(public_key)])
    return WrappedKey(key_id=key_id(public_key), wrapped=base64.b64encode(sealed).decode("ascii"))


def unwrap(wrapped: WrappedKey, private_key: str, method: str, *, what: str = "the backup") -> DataKey:
    """The clear data key of ``wrapped``, opened with ``private_key``.

    A private key of another recipient is refused, naming both key ids (never a key); a wrapped key that
    the right private key cannot open (damaged) is refused too.
    """
    identity = _identity(private_key)
    have = key_id(str(identity.to_public()))
    if have != wrapped.key_id:
        raise OwnerKeyError(
            f"wrong owner private key for {what}: its data key is wrapped for key id {wrapped.key_id}, "
            f"the private key given is key id {have}"
        )
    try:
        sealed = base64.b64decode(wrapped.wrapped.encode("ascii"), validate=True)
        clear = pyrage.decrypt(sealed, [identity])
    except Exception:
        raise OwnerKeyError(
            f"the data key of {what} (key id {wrapped.key_id}) does not open with that key's private key: "
            "the wrapped key is damaged"
        ) from None
    try:
        return DataKey(method, clear.decode("ascii"))
    except (UnicodeDecodeError, OwnerKeyError):
        raise OwnerKeyError(f"the data key of {what} opened, but it is not a {method} key") from None


def backup_key(cluster: ClusterConfig) -> tuple[DataKey, WrappedKey] | None:
    """An owner-key cluster's fresh data key for one backup, and that key wrapped to the owner's public
    key; None for any other cluster (no encryption, or one shared key)."""
    enc = cluster.br.encryption
    if enc is None or not enc.owner_key:
        return None
    if not enc.owner_public_key:
        raise OwnerKeyError(f"cluster {cluster.name}: br.encryption.mode owner-key needs owner_public_key")
    key = new_data_key(enc.method)
    return key, wrap(key, enc.owner_public_key)


def rewrap(wrapped: WrappedKey, private_key: str, method: str, new_public_key: str, *, what: str) -> WrappedKey:
    """The same data key, wrapped to ``new_public_key`` instead (the backup's data is untouched)."""
    return wrap(unwrap(wrapped, private_key, method, what=what), new_public_key)
