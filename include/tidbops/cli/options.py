"""Options that several commands take, spelled once (kept light: commands that import only this load no
SQLAlchemy)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

FleetConfigPath = Annotated[Path | None, typer.Option("--config", help="Fleet config (default: the usual)")]
ClusterS3Endpoint = Annotated[
    str | None,
    typer.Option("--s3-endpoint", help="S3 endpoint URL; default: $TIDBOPS_S3_ENDPOINT, else the fleet config's"),
]
