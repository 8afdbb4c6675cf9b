from __future__ import annotations

import json
from types import SimpleNamespace
from unittest import mock

import pytest

from tidbops_airflow.notifiers.log import TiDBOpsLogNotifier

pytestmark = pytest.mark.operators


def test_logs_one_error_line_with_the_alert() -> None:
    notifier = TiDBOpsLogNotifier(route="dba-log", cluster="dev", note="fallback")
    ti = SimpleNamespace(
        dag_id="tidb_backup_full__dev", task_id="verify_backup", run_id="r1", try_number=3, log_url="u"
    )
    with mock.patch.object(TiDBOpsLogNotifier, "log") as log:
        notifier({"ti": ti, "exception": RuntimeError("password=hunter22 backup missing 2 files")})
    (fmt, payload), _ = log.error.call_args
    assert fmt == "ALERT %s"
    alert = json.loads(payload)
    assert (alert["route"], alert["cluster"], alert["task_id"], alert["note"]) == (
        "dba-log",
        "dev",
        "verify_backup",
        "fallback",
    )
    assert alert["error"] == "password=*** backup missing 2 files"
