"""The audit's filters as query parameters: validated, with a 422 that names the field and what is valid.

Empty values count as absent (an HTML form sends every field, filled or not). Times are ISO 8601: a date
(``2026-12-01``, midnight UTC) or a date and time (``2026-12-01T08:00``, ``…Z`` or ``…+02:00``; without a
zone, UTC). An unknown parameter is refused too, so a misspelt filter never silently shows everything.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from tidbops.catalog.records import EVENT_STATUSES
from tidbops.fleetview.models import AuditCategory, AuditQuery
from tidbops.timefmt import iso

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
CATEGORIES: tuple[str, ...] = get_args(AuditCategory)
_TIME_HINT = "use ISO 8601: a date (2026-12-01) or a date and time (2026-12-01T08:00:00Z; no zone means UTC)"


def parse_time(value: str) -> datetime:
    """An ISO 8601 date or date-time as an aware UTC datetime; ``ValueError`` saying what is valid otherwise."""
    text = value.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0), tzinfo=UTC)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        shown = text if len(text) <= 40 else text[:39] + "…"
        raise ValueError(f"{shown!r} is not a time; {_TIME_HINT}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


class AuditFilters(BaseModel):
    """What the audit page, its JSON and its exports filter on (every one optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cluster: str | None = Field(default=None, max_length=63, description="one cluster (among those you may see)")
    category: AuditCategory | None = Field(
        default=None, description="what the event is about: " + ", ".join(CATEGORIES)
    )
    status: str | None = Field(default=None, description="the state an event records: " + ", ".join(EVENT_STATUSES))
    actor: str | None = Field(default=None, description="who: a user name, `schedule` or `airflow`")
    since: datetime | None = Field(default=None, description="events at or after this time (ISO 8601; UTC if no zone)")
    until: datetime | None = Field(default=None, description="events at or before this time (ISO 8601)")
    before_id: int | None = Field(default=None, ge=1, description="page cursor: the previous page's `next_cursor`")
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=f"page size, 1–{MAX_LIMIT}")

    @field_validator("*", mode="before")
    @classmethod
    def _empty_is_absent(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str) and not value.strip():
            return DEFAULT_LIMIT if info.field_name == "limit" else None
        return value.strip() if isinstance(value, str) else value

    @field_validator("since", "until", mode="before")
    @classmethod
    def _time(cls, value: Any) -> Any:
        # "before" validators run last-defined first: a blank value is left to _empty_is_absent
        return parse_time(value) if isinstance(value, str) and value.strip() else value

    @field_validator("status")
    @classmethod
    def _status(cls, value: str | None) -> str | None:
        if value is not None and value not in EVENT_STATUSES:
            shown = value if len(value) <= 40 else value[:39] + "…"
            raise ValueError(f"{shown!r} is not an event status; valid: {', '.join(EVENT_STATUSES)}")
        return value

    @field_validator("actor")
    @classmethod
    def _text(cls, value: str | None) -> str | None:
        if value is not None and (len(value) > 200 or not value.isprintable()):
            raise ValueError("at most 200 printable characters, on one line")
        return value

    @field_validator("until")
    @classmethod
    def _range(cls, until: datetime | None, info: ValidationInfo) -> datetime | None:
        since = info.data.get("since")
        if since is not None and until is not None and since > until:
            raise ValueError(
                f"the time range is empty: since ({iso(since)}) is after until ({iso(until)}); "
                "swap them or widen the range"
            )
        return until

    def query(self, clusters: tuple[str, ...] | None) -> AuditQuery:
        return AuditQuery(
            clusters=clusters,
            cluster=self.cluster,
            category=self.category,
            status=self.status,
            actor=self.actor,
            since=self.since,
            until=self.until,
            before_id=self.before_id,
            limit=self.limit,
        )

    def params(self, **changes: Any) -> dict[str, str]:
        """The filters as query parameters (only those set), with ``changes`` applied (``None`` drops one)."""
        values = {**self.model_dump(), **changes}
        out: dict[str, str] = {}
        for key, value in values.items():
            if value is None or (key == "limit" and value == DEFAULT_LIMIT):
                continue
            out[key] = iso(value, timespec="microseconds") if isinstance(value, datetime) else str(value)
        return out


class ExportFilters(AuditFilters):
    format: Literal["csv", "json"] = Field(default="csv", description="csv (text/csv) or json (a JSON array)")
