"""Owner-held keys (#17): fresh data keys, wrapping to an age X25519 public key, unwrap, rewrap, config."""

from __future__ import annotations

import base64
from pathlib import Path

import pyrage
import pytest
from pydantic import ValidationError
from pyrage import x25519

from tidbops.config import ClusterConfig, EncryptionConfig, RestoreConfig
from tidbops.freshness import current_basis
from tidbops.keys import owner
from tidbops.keys.owner import DataKey, OwnerKeyError, WrappedKey

pytestmark = pytest.mark.unit


def pair() -> tuple[str, str]:
    ident = x25519.Identity.generate()
    return str(ident.to_public()), str(ident)


def test_fresh_data_key_per_call_of_the_method_length() -> None:
    for method, size in (("aes128-ctr", 16), ("aes192-ctr", 24), ("aes256-ctr", 32)):
        keys = {owner.new_data_key(method).hex for _ in range(50)}
        assert len(keys) == 50
        assert all(len(bytes.fromhex(k)) == size for k in keys)
    with pytest.raises(OwnerKeyError):
        owner.new_data_key("sm4-ctr")


def test_data_key_repr_never_shows_the_key() -> None:
    k = owner.new_data_key("aes256-ctr")
    assert k.hex not in repr(k) and k.hex not in str(k)


def test_wrap_then_unwrap_gives_the_same_key_and_the_wrapped_form_holds_no_clear_key() -> None:
    pub, priv = pair()
    k = owner.new_data_key("aes256-ctr")
    w = owner.wrap(k, pub)
    assert w.key_id == owner.key_id(pub) and w.key_id.startswith("age:") and len(w.key_id) == 20
    assert k.hex not in w.wrapped and k.hex.encode() not in base64.b64decode(w.wrapped)
    assert priv not in str(w.to_dict())
    assert owner.unwrap(w, priv, "aes256-ctr") == k
    # stock age reads it: the header names the X25519 recipient stanza
    assert base64.b64decode(w.wrapped).startswith(b"age-encryption.org/v1\n-> X25519 ")
    assert pyrage.decrypt(base64.b64decode(w.wrapped), [x25519.Identity.from_str(priv)]) == k.hex.encode()


def test_two_wraps_of_one_key_differ() -> None:
    pub, _ = pair()
    k = owner.new_data_key("aes128-ctr")
    assert owner.wrap(k, pub).wrapped != owner.wrap(k, pub).wrapped


def test_wrong_private_key_names_both_key_ids_and_no_key() -> None:
    pub, _ = pair()
    other_pub, other_priv = pair()
    w = owner.wrap(owner.new_data_key("aes256-ctr"), pub)
    with pytest.raises(OwnerKeyError) as err:
        owner.unwrap(w, other_priv, "aes256-ctr", what="backup b1")
    text = str(err.value)
    assert "wrong owner private key for backup b1" in text
    assert owner.key_id(pub) in text and owner.key_id(other_pub) in text
    assert other_priv not in text


def test_damaged_wrapped_key_is_refused() -> None:
    pub, priv = pair()
    w = owner.wrap(owner.new_data_key("aes256-ctr"), pub)
    raw = bytearray(base64.b64decode(w.wrapped))
    raw[-3] ^= 0x40
    bad = WrappedKey(key_id=w.key_id, wrapped=base64.b64encode(bytes(raw)).decode())
    with pytest.raises(OwnerKeyError, match="damaged"):
        owner.unwrap(bad, priv, "aes256-ctr")


def test_unwrapped_key_of_another_method_is_refused() -> None:
    pub, priv = pair()
    w = owner.wrap(owner.new_data_key("aes128-ctr"), pub)
    with pytest.raises(OwnerKeyError, match="not a aes256-ctr key"):
        owner.unwrap(w, priv, "aes256-ctr")


def test_private_key_as_age_keygen_writes_it(tmp_path: Path) -> None:
    pub, priv = pair()
    text = f"# created: 2026-12-07T01:00:00Z\n# public key: {pub}\n{priv}\n"
    assert owner.public_of(text) == pub
    w = owner.wrap(owner.new_data_key("aes192-ctr"), pub)
    assert owner.unwrap(w, text, "aes192-ctr").method == "aes192-ctr"


@pytest.mark.parametrize("bad", ["", "age1abc", "ssh-ed25519 AAAA", pair()[1]])
def test_bad_public_keys_are_refused_without_echo(bad: str) -> None:
    with pytest.raises(OwnerKeyError) as err:
        owner.check_public_key(bad)
    if bad:
        assert bad not in str(err.value)


@pytest.mark.parametrize("bad", ["", "AGE-SECRET-KEY-1XYZ", pair()[0], "a\nb"])
def test_bad_private_keys_are_refused_without_echo(bad: str) -> None:
    w = owner.wrap(owner.new_data_key("aes256-ctr"), pair()[0])
    with pytest.raises(OwnerKeyError) as err:
        owner.unwrap(w, bad, "aes256-ctr")
    if bad:
        assert bad not in str(err.value)


def test_rewrap_keeps_the_data_key_and_the_old_private_key_no_longer_opens_it() -> None:
    old_pub, old_priv = pair()
    new_pub, new_priv = pair()
    k = owner.new_data_key("aes256-ctr")
    w = owner.wrap(k, old_pub)
    w2 = owner.rewrap(w, old_priv, "aes256-ctr", new_pub, what="b1")
    assert w2.key_id == owner.key_id(new_pub)
    assert owner.unwrap(w2, new_priv, "aes256-ctr") == k
    with pytest.raises(OwnerKeyError, match="wrong owner private key"):
        owner.unwrap(w2, old_priv, "aes256-ctr")


def test_wrapped_key_round_trips_and_checks_its_fields() -> None:
    w = owner.wrap(owner.new_data_key("aes256-ctr"), pair()[0])
    assert WrappedKey.from_dict(w.to_dict()) == w
    for broken in (
        {**w.to_dict(), "scheme": "rsa"},
        {**w.to_dict(), "key_id": "x"},
        {**w.to_dict(), "wrapped": ""},
        [],
    ):
        with pytest.raises(OwnerKeyError):
            WrappedKey.from_dict(broken)


def test_data_key_checks_its_form() -> None:
    with pytest.raises(OwnerKeyError):
        DataKey("aes256-ctr", "00" * 16)
    with pytest.raises(OwnerKeyError):
        DataKey("aes128-ctr", "ZZ" * 16)


# ----------------------------------------------------------------------------------- config


def test_encryption_modes() -> None:
    pub, _ = pair()
    shared = EncryptionConfig(method="aes256-ctr", key_conn_id="k")  # type: ignore[call-arg]
    assert shared.mode == "shared-key" and not shared.owner_key
    own = EncryptionConfig(method="AES256-CTR", mode="Owner-Key", owner_public_key=f" {pub} ")  # type: ignore[arg-type]
    assert own.owner_key and own.owner_public_key == pub and own.key_conn_id is None
    for kw in (
        {"mode": "shared-key"},  # no key_conn_id
        {"mode": "shared-key", "key_conn_id": "k", "owner_public_key": pub},
        {"mode": "owner-key"},  # no public key
        {"mode": "owner-key", "owner_public_key": pub, "key_conn_id": "k"},
        {"mode": "owner-key", "owner_public_key": "age1nope"},
    ):
        with pytest.raises(ValidationError):
            EncryptionConfig(method="aes256-ctr", **kw)  # type: ignore[arg-type]
    assert RestoreConfig(owner_key_conn_id="owner_key_uat").owner_key_conn_id == "owner_key_uat"


def test_fleet_config_with_owner_key_loads(tmp_path: Path) -> None:
    from tidbops.config import load_fleet

    pub, _ = pair()
    p = tmp_path / "clusters.yaml"
    p.write_text(
        "clusters:\n"
        "  - name: own\n    env: dev\n    pd: ['pd:2379']\n    tidb_conn_id: tidb_own\n"
        "    storage: {uri: 's3://bucket/tidb'}\n"
        f"    br: {{encryption: {{method: aes256-ctr, mode: owner-key, owner_public_key: '{pub}'}}}}\n"
        "    restore: {owner_key_conn_id: owner_key_own}\n"
    )
    fleet = load_fleet(p)
    assert fleet.ok, [str(i) for i in fleet.issues]
    c = fleet.get("own")
    assert c.br.encryption is not None and c.br.encryption.owner_public_key == pub
    assert c.restore.owner_key_conn_id == "owner_key_own"
    # a private key in the fleet config is refused (in any field)
    _, priv = pair()
    p.write_text(p.read_text().replace(pub, priv))
    assert not load_fleet(p).ok


def test_drill_basis_names_the_owner_key_id() -> None:
    pub, _ = pair()
    c = ClusterConfig.model_validate(
        {
            "name": "own",
            "env": "dev",
            "pd": ["pd:2379"],
            "tidb_conn_id": "t",
            "storage": {"uri": "s3://bucket/tidb"},
            "br": {"encryption": {"method": "aes256-ctr", "mode": "owner-key", "owner_public_key": pub}},
        }
    )
    basis = current_basis(c, tidb_version=None, br_version=None, key_hex=None)
    assert basis.encryption_key_id == owner.key_id(pub)


def test_redaction_masks_an_age_private_key_and_the_fleet_config_refuses_one(tmp_path: Path) -> None:
    from tidbops.config import load_fleet
    from tidbops.redact import find_secret, redact

    pub, priv = pair()
    for text in (f"key={priv}", f"the key {priv.lower()} here", f'{{"password": "{priv}"}}'):
        shown = redact(text)
        assert priv.lower() not in shown.lower() and "***" in shown
    assert find_secret(priv) == "an age private key" and find_secret(pub) is None
    p = tmp_path / "clusters.yaml"
    p.write_text(
        "clusters:\n  - name: own\n    env: dev\n    pd: ['pd:2379']\n    tidb_conn_id: tidb_own\n"
        f"    storage: {{uri: 's3://bucket/tidb'}}\n    owner: '{priv}'\n"
    )
    fleet = load_fleet(p)
    assert not fleet.ok and any("an age private key" in str(i) for i in fleet.issues)
    assert all(priv not in str(i) for i in fleet.issues)
