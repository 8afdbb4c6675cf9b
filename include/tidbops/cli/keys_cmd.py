"""`tidbops keys`: owner-held backup keys (#17).

``tidbops keys rewrap --cluster X --to NEW_PUBLIC_KEY --from-key OLD_PRIVATE_KEY_FILE`` wraps every
retained backup's data key of cluster X to the new public key: in each backup's manifest and in the
catalog (audited as ``backup.key_rewrapped``, by ``--actor`` or the login name). The data is not touched.
Put the new public key into the fleet config (``br.encryption.owner_public_key``) first: new backups use it
from then on, and the command refuses a ``--to`` that differs from it. The old private key is read once
from a file only you can read (mode 0600; an ``age-keygen`` file works as it is), never from argv.

``tidbops keys id PUBLIC_KEY`` (or ``--private-key-file F``) prints a key's id (``age:<16 hex>``), the one
the catalog, manifests and error messages name.

S3 credentials and the endpoint as for ``tidbops verify``. Exit codes: 0 done; 1 a backup could not be
rewrapped (each named on stderr), or the config or catalog could not be used; 2 bad usage.
"""

from __future__ import annotations

import getpass
import json
import stat
from pathlib import Path
from typing import Annotated

import typer

from tidbops.cli.catalog_cmd import CatalogURL, _open_catalog, checked_endpoint, open_storage
from tidbops.cli.options import ClusterS3Endpoint, FleetConfigPath
from tidbops.config import load_fleet
from tidbops.errors import ConfigError, UnknownClusterError
from tidbops.keys.owner import OwnerKeyError, check_public_key, key_id, key_id_of_private
from tidbops.storage import Storage

keys_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Owner-held backup keys (age X25519).")


def _usage(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def read_private_key_file(path: Path, option: str = "--from-key") -> str:
    """The private key file's text, when only its owner can read it (mode 0600 or stricter)."""
    try:
        st = path.stat()
    except OSError as exc:
        raise _usage(f"{option} {path}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise _usage(f"{option} {path}: not a regular file")
    if st.st_mode & 0o077:
        raise _usage(f"{option} {path}: readable by others (mode {st.st_mode & 0o777:o}); chmod 600 it")
    try:
        return path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        raise _usage(f"{option} {path}: not a readable age identity file") from None


@keys_app.command("rewrap")
def rewrap_cmd(
    cluster: Annotated[str, typer.Option("--cluster", help="The owner-key cluster whose backups to rewrap")],
    from_key: Annotated[
        Path, typer.Option("--from-key", help="A 0600 file holding the OLD private key (AGE-SECRET-KEY-1…)")
    ],
    to: Annotated[
        str | None,
        typer.Option("--to", help="The NEW public key (age1…); default: the fleet config's owner_public_key"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
    config: FleetConfigPath = None,
    catalog: CatalogURL = None,
    s3_endpoint: ClusterS3Endpoint = None,
    actor: Annotated[
        str | None, typer.Option("--actor", help="Who rewraps, for the audit (default: your login name)")
    ] = None,
) -> None:
    """Wrap every retained backup's data key to a new public key (manifests and catalog; data untouched)."""
    from tidbops.keys.rewrap import rewrap_cluster

    private = read_private_key_file(from_key)
    endpoint = checked_endpoint(s3_endpoint)
    try:
        fleet = load_fleet(config)
        chosen = fleet.get(cluster)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except UnknownClusterError as exc:
        raise _usage(str(exc)) from None
    enc = chosen.br.encryption
    new_public = to if to is not None else (enc.owner_public_key if enc is not None else None)
    if not new_public:
        raise _usage(f"cluster {cluster} has no br.encryption.owner_public_key; pass --to")
    try:
        new_public = check_public_key(new_public)
        key_id_of_private(private)
    except OwnerKeyError as exc:
        raise _usage(str(exc)) from None
    who = actor or f"cli:{getpass.getuser()}"
    chosen_endpoint = endpoint or chosen.storage.endpoint

    def opener(uri: str) -> Storage:
        return open_storage(uri, chosen_endpoint, chosen.storage.region)

    with _open_catalog(catalog) as cat:
        try:
            report = rewrap_cluster(
                cat, chosen, private_key=private, new_public_key=new_public, open_storage=opener, actor=who
            )
        except OwnerKeyError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
    del private
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2, sort_keys=True))
    else:
        typer.echo(report.summary())
        for error in report.errors:
            typer.echo(f"error: {error}", err=True)
    raise typer.Exit(0 if report.ok else 1)


@keys_app.command("id")
def id_cmd(
    public_key: Annotated[str | None, typer.Argument(help="An age public key (age1…)", show_default=False)] = None,
    private_key_file: Annotated[
        Path | None, typer.Option("--private-key-file", help="Or: a 0600 file holding a private key")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Print a key's id (age:<16 hex>), as the catalog, manifests and errors name it; never the key."""
    if (public_key is None) == (private_key_file is None):
        raise _usage("give a public key, or --private-key-file")
    try:
        if public_key is not None:
            found = key_id(public_key)
        else:
            assert private_key_file is not None
            found = key_id_of_private(read_private_key_file(private_key_file, "--private-key-file"))
    except OwnerKeyError as exc:
        raise _usage(str(exc)) from None
    typer.echo(json.dumps({"key_id": found}) if as_json else found)
