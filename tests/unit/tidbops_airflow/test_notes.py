"""Run notes as Airflow shows them: Markdown (CommonMark, rendered here by markdown-it, as the UI's
react-markdown does), at most 1000 characters, the outcome in the first words and the reason kept."""

from __future__ import annotations

import html
import json
import logging
import re
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import pytest
from markdown_it import MarkdownIt

from tidbops import tso
from tidbops.recovery.plan import RestoreStep
from tidbops.restore import RestorePlan
from tidbops_airflow.notes import NOTE_MAX, fit, md, refused_note, restore_note

pytestmark = pytest.mark.unit

WHEN = datetime(2026, 11, 22, 7, 18, 33, tzinfo=UTC)
FULL = "dev-full-20261122t071828z-74267019"


def shown(markdown: str) -> str:
    """The text a reader sees once the Markdown is rendered (tags dropped, entities decoded)."""
    rendered = MarkdownIt("commonmark").render(markdown)
    return html.unescape(re.sub(r"<[^>]+>", "", rendered))


def plan(**request: Any) -> RestorePlan:
    conf = {"source_cluster": "dev", "target_cluster": "scratch1", "restore_point": "latest", "dry_run": True,
            "reason": "INC-42: orders_*table* <br log file> lost", **request}  # fmt: skip
    return RestorePlan(
        plan_id="dev-restore-20261122t071900z-0a0b0c0d",
        source="dev",
        target="scratch1",
        mode="snapshot",
        restore_ts=tso.from_datetime(WHEN),
        steps=(RestoreStep("full", FULL, f"s3://b/dev/full/{FULL}", tso.from_datetime(WHEN)),),
        tables=("shop.orders", "crm.*"),
        wipe=("old_db",),
        log_storage_uri=None,
        point_reason="the newest verified backup",
        expected_seconds=19.6,
        expected_basis="median of 1 drill",
        commands=("br restore full --pd pd:2379 -s s3://b/dev/full/x --log-file <br log file>",) * 30,
        request=conf,
        created_at=WHEN,
    )


def test_a_dry_run_says_so_first_and_shows_the_reason_as_typed() -> None:
    note = restore_note(plan(), requested_by="dba")
    seen = shown(note)
    assert seen.startswith("DRY RUN (nothing changed): dev → scratch1")
    assert "Reason: INC-42: orders_*table* <br log file> lost (requested by dba)" in seen
    assert "Tables: shop.orders, crm.*" in seen and FULL in seen and "drops old_db first" in seen
    assert "br restore" not in note  # the command lines are in the task log, not the note
    assert len(note) <= NOTE_MAX and len(note.splitlines()) <= 10


@pytest.mark.parametrize(
    ("outcome", "error", "first"),
    [
        (None, None, "RESTORE dev → scratch1 (running)"),
        ("succeeded", None, "RESTORED dev → scratch1"),
        ("failed", "restore: [BR:KV:ErrKVDownloadFailed] <store 1>\nTraceback …", "RESTORE FAILED dev → scratch1: "
         "restore: [BR:KV:ErrKVDownloadFailed] <store 1>"),
    ],
)  # fmt: skip
def test_a_real_restore_says_where_it_stands(outcome: str | None, error: str | None, first: str) -> None:
    note = restore_note(plan(dry_run=False), requested_by="dba", outcome=outcome, error=error)
    assert shown(note).splitlines()[0] == first
    assert "Traceback" not in note


def test_a_long_reason_is_cut_before_the_note_limit_and_nothing_after_it_is_lost() -> None:
    note = restore_note(plan(reason="why " * 400, tables=[]), requested_by="dba")
    assert len(note) <= NOTE_MAX
    seen = shown(note)
    assert "Reason: why why" in seen and "(requested by dba)" in seen and "Restore id" in seen


def test_a_refusal_is_one_line_then_the_reason() -> None:
    note = refused_note(
        "target_not_allowed",
        "target dev is not an allowed restore target of dev; allowed: scratch1, scratch2 <restore.allowed_targets>",
        source="dev",
        target="dev",
    )
    first, _, rest = shown(note).partition("\n")
    assert first == "REFUSED (target_not_allowed): dev → dev; nothing ran"
    assert rest.strip().endswith("allowed: scratch1, scratch2 <restore.allowed_targets>")


def test_md_and_fit() -> None:
    assert shown(md("a <b>bold</b> *x* _y_ `z` [l](u) # h")) == "a <b>bold</b> *x* _y_ `z` [l](u) # h\n"
    assert md("two\n  lines") == "two lines" and md("abcdef", 4) == "abc…"
    text = "\n".join(f"line {i}" for i in range(400))
    cut = fit(text)
    assert len(cut) <= NOTE_MAX and cut.endswith("(the rest is in the task log)")
    assert cut.split("\n\n…")[0].splitlines()[-1].startswith("line ")  # cut on a line boundary
    assert fit("short") == "short"


class FakeAirflowAPI(ThreadingHTTPServer):
    """Airflow's REST API as the note needs it: /auth/token, then PATCH of the run (answers scripted)."""

    def __init__(self, patch_answers: list[int]) -> None:
        self.patch_answers = patch_answers
        self.patched: list[tuple[str, dict[str, Any]]] = []

        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                self._answer(201, {"access_token": "t0ken"})

            def do_PATCH(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                code = server.patch_answers.pop(0) if server.patch_answers else 200
                if code == 200:
                    server.patched.append((self.path, body))
                self._answer(code, {"detail": "busy" if code >= 500 else "no"})

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


@pytest.mark.parametrize(
    ("answers", "set_", "tries"), [([], True, 1), ([503, 500], True, 3), ([503, 503, 503], False, 3), ([403], False, 1)]
)
def test_the_note_is_set_through_the_api_and_a_busy_server_is_asked_again(
    answers: list[int], set_: bool, tries: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tidbops_airflow.notes as notes

    api = FakeAirflowAPI(list(answers))
    monkeypatch.setenv("AIRFLOW_CONN_TIDBOPS_AIRFLOW_API", f"http://dba:s3cret-pw@127.0.0.1:{api.server_port}")
    monkeypatch.setattr(notes, "NOTE_BACKOFF", 0.01)
    context = {"ti": SimpleNamespace(dag_id="tidb_restore", run_id="manual__2026-11-22T01:00:00+00:00")}
    log = logging.getLogger("test-notes")
    try:
        assert notes.set_run_note(context, "**DRY RUN**", log=log) is set_
    finally:
        api.shutdown()
    assert len(answers) - len(api.patch_answers) + (1 if set_ else 0) == tries
    if set_:
        assert api.patched == [
            ("/api/v2/dags/tidb_restore/dagRuns/manual__2026-11-22T01%3A00%3A00%2B00%3A00?update_mask=note",
             {"note": "**DRY RUN**"})
        ]  # fmt: skip
