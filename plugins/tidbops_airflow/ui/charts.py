"""Inline SVG drawn on the server: the backup chain as a timeline, and the drills' RTO history.

No chart library and no script: each chart is one ``<svg>`` with a ``viewBox`` (it scales to the page),
a ``<title>`` per mark (the browser's tooltip) and marks that link to their row in the tables below.
Every text that comes from the catalog is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from markupsafe import Markup, escape

from tidbops.catalog.info import human_age, human_size
from tidbops.fleetview.models import BackupBrief, DrillBrief, LogWindow
from tidbops.timefmt import show

WIDTH = 960
LEFT, RIGHT = 90, 16
STATUS_COLOURS = {
    "succeeded": "var(--ok)",
    "passed": "var(--ok)",
    "failed": "var(--bad)",
    "running": "var(--run)",
    "expired": "var(--muted)",
}


def when(dt: datetime | None) -> str:
    """``2026-12-06 19:35:12 UTC`` (``-`` when unknown): the one time format of the pages."""
    return show(dt, missing="-")


def seconds(value: float | None) -> str:
    """A duration in words: ``35s``, ``4m 10s``, ``2h 5m``, ``3d 4h`` (``-`` when unknown)."""
    return "-" if value is None else human_age(timedelta(seconds=value))


class _Axis:
    """Times ``t0``…``t1`` onto x pixels ``LEFT``…``WIDTH - RIGHT``."""

    def __init__(self, t0: datetime, t1: datetime) -> None:
        if t1 - t0 < timedelta(hours=1):
            t0 = t1 - timedelta(hours=1)
        pad = (t1 - t0) * 0.03
        self.t0, self.t1 = t0 - pad, t1 + pad

    def x(self, t: datetime) -> float:
        span = (self.t1 - self.t0).total_seconds()
        return round(LEFT + (WIDTH - LEFT - RIGHT) * (t - self.t0).total_seconds() / span, 1)

    def ticks(self, y: float, height: float, n: int = 6) -> list[str]:
        span = self.t1 - self.t0
        fmt = "%m-%d %H:%M" if span <= timedelta(days=3) else "%Y-%m-%d"
        out = []
        for i in range(n + 1):
            t = self.t0 + span * (i / n)
            x = self.x(t)
            out.append(f'<line class="grid" x1="{x}" x2="{x}" y1="8" y2="{y}"/>')
            anchor = "start" if i == 0 else "end" if i == n else "middle"
            out.append(f'<text class="tick" x="{x}" y="{y + 14}" text-anchor="{anchor}">{t.strftime(fmt)}</text>')
        return out


def _svg(body: list[str], height: int, label: str) -> Markup:
    # every text from the catalog in ``body`` and ``label`` is escaped; the rest are numbers we formatted
    return Markup(  # noqa: S704
        f'<svg viewBox="0 0 {WIDTH} {height}" width="100%" role="img" aria-label="{escape(label)}" '
        f'preserveAspectRatio="xMidYMid meet">' + "".join(body) + "</svg>"
    )


def _backup_time(b: BackupBrief) -> datetime:
    return b.backup_time or b.started_at


def backup_title(b: BackupBrief) -> str:
    lines = [f"{b.kind} backup {b.id} ({b.status})"]
    lines.append(f"BackupTS {b.backup_ts} = {when(b.backup_time)}" if b.backup_ts else f"started {when(b.started_at)}")
    check = (
        f"verified (tier {b.verified_tier})" if b.verified else "verify failed" if b.verify_failed else "not verified"
    )
    lines.append(f"{human_size(b.size_bytes)}, BR {seconds(b.br_duration_s)}, {check}")
    if b.base_backup_id:
        lines.append(f"on {b.base_backup_id}")
    return "\n".join(lines)


def backup_timeline(backups: Sequence[BackupBrief], log: LogWindow | None, now: datetime) -> Markup:
    """Fulls (upper lane), incrementals (middle lane, a line to the backup they build on) and the log
    backup's restorable window (lower band) on one time axis that ends now. Filled: verified."""
    times = [_backup_time(b) for b in backups]
    if log is not None and log.window_start is not None:
        times.append(log.window_start)
    if not times:
        return Markup('<p class="empty">No backup recorded yet.</p>')
    height = 150
    axis = _Axis(min(times), max([now, *times]))
    lanes = {"full": 38, "incremental": 72}
    body = [f'<text class="lane" x="{LEFT - 8}" y="{y + 4}" text-anchor="end">{k}</text>' for k, y in lanes.items()]
    body.append(f'<text class="lane" x="{LEFT - 8}" y="110" text-anchor="end">log window</text>')
    body += axis.ticks(122, height)
    where = {b.id: (axis.x(_backup_time(b)), lanes.get(b.kind, 72)) for b in backups}
    for b in backups:  # links first, so the marks are drawn over them
        if b.base_backup_id in where:
            (x1, y1), (x2, y2) = where[b.base_backup_id], where[b.id]
            body.append(f'<line class="link" x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}"/>')
    if log is not None and log.window_start is not None and log.window_end is not None:
        x1, x2 = axis.x(log.window_start), axis.x(log.window_end)
        title = f"restorable window {when(log.window_start)} → {when(log.window_end)}"
        if log.lag_s is not None:
            title += f"\ncheckpoint lag {seconds(log.lag_s)} ({log.status})"
        body.append(
            f'<rect class="window{" frozen" if log.frozen else ""}" x="{x1}" y="102" width="{max(x2 - x1, 2)}" '
            f'height="14" rx="3"><title>{escape(title)}</title></rect>'
        )
    for b in sorted(backups, key=_backup_time):
        x, y = where[b.id]
        colour = STATUS_COLOURS.get(b.status, "var(--muted)")
        fill = colour if b.verified else "var(--bg)"
        r = 7 if b.kind == "full" else 5
        body.append(
            f'<a href="#backup-{escape(b.id)}"><circle class="mark" cx="{x}" cy="{y}" r="{r}" fill="{fill}" '
            f'stroke="{colour}"><title>{escape(backup_title(b))}</title></circle></a>'
        )
    x_now = axis.x(now)
    body.append(f'<line class="now" x1="{x_now}" x2="{x_now}" y1="8" y2="122"/>')
    return _svg(body, height, f"backup timeline: {len(backups)} backups")


def rto_chart(drills: Sequence[DrillBrief]) -> Markup:
    """Each finished drill's RTO (restore plus validation) over time; a failed drill is a red point."""
    points = sorted((d for d in drills if d.rto_s is not None), key=lambda d: d.started_at)
    if not points:
        return Markup('<p class="empty">No drill has measured an RTO yet.</p>')
    height, top, bottom = 190, 12, 156
    axis = _Axis(points[0].started_at, points[-1].started_at)
    peak = max(d.rto_s or 0.0 for d in points) * 1.15 or 1.0

    def y(value: float) -> float:
        return round(bottom - (bottom - top) * value / peak, 1)

    body: list[str] = []
    for i in range(5):
        value = peak * i / 4
        body.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value)}" y2="{y(value)}"/>')
        body.append(f'<text class="tick" x="{LEFT - 8}" y="{y(value) + 4}" text-anchor="end">{seconds(value)}</text>')
    body += axis.ticks(bottom, height)[1::2]  # labels only: the horizontal grid is enough
    passed = [d for d in points if d.status == "passed"]
    if len(passed) > 1:
        path = " ".join(f"{axis.x(d.started_at)},{y(d.rto_s or 0.0)}" for d in passed)
        body.append(f'<polyline class="trend" points="{path}"/>')
    for d in points:
        colour = STATUS_COLOURS.get(d.status, "var(--muted)")
        title = f"drill {d.id} {d.status}\n{when(d.started_at)}\nRTO {seconds(d.rto_s)}"
        if d.restore_s is not None or d.validation_s is not None:
            title += f" (restore {seconds(d.restore_s)}, validation {seconds(d.validation_s)})"
        body.append(
            f'<a href="#drill-{escape(d.id)}"><circle class="mark" cx="{axis.x(d.started_at)}" '
            f'cy="{y(d.rto_s or 0.0)}" r="5" fill="{colour}" stroke="{colour}"><title>{escape(title)}</title>'
            "</circle></a>"
        )
    return _svg(body, height, f"RTO of the last {len(points)} drills")
