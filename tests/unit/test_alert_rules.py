"""include/prometheus/alerts.yml: promtool checks and unit-tests it; every rule is documented and exercised.

``promtool check rules`` (syntax, templates, lint) and ``promtool test rules alerts.test.yml`` (input
series per rule, firing and not firing) are Debian's ``/usr/bin/promtool``; in CI (``CI=true``) a missing
promtool fails the test instead of skipping it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import unicodedata
from pathlib import Path
from typing import Any

import pytest
import yaml

from tidbops import metrics

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
RULES_DIR = REPO / "include" / "prometheus"
RULES = RULES_DIR / "alerts.yml"
RULE_TESTS = RULES_DIR / "alerts.test.yml"

#: the issue's six rules (#13), plus the metrics endpoint's own
REQUIRED = {
    "TidbopsNoVerifiedBackup": "no verified backup in 26 h",
    "TidbopsLogCheckpointLag": "checkpoint lag over the cluster's limit",
    "TidbopsLogCheckpointFrozen": "frozen checkpoint",
    "TidbopsNoSuccessfulDrill": "no successful drill in 8 days",
    "TidbopsDrillFailed": "a drill failed",
    "TidbopsPitrWindowShort": "PITR window shorter than the retention promise",
    "TidbopsMetricsScrapeError": "the catalog did not answer a scrape",
}


def promtool() -> str:
    found = shutil.which("promtool") or ("/usr/bin/promtool" if Path("/usr/bin/promtool").exists() else None)
    if found is None:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail("promtool is missing: install Debian's prometheus package (make test does, as root)")
        pytest.skip("promtool is missing (Debian's prometheus package); CI fails here instead")
    return found


def rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def github_anchor(heading: str) -> str:
    """The anchor GitHub (and most Markdown renderers) give a heading."""
    text = unicodedata.normalize("NFKC", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def readme_anchors() -> set[str]:
    anchors: set[str] = set()
    in_code = False
    for line in (REPO / "README.md").read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and (m := re.match(r"#{1,6} (.+)", line)):
            anchors.add(github_anchor(m.group(1)))
    return anchors


def test_github_anchor() -> None:
    assert github_anchor("Log backup (PITR) health and `tidbops window`") == "log-backup-pitr-health-and-tidbops-window"
    assert github_anchor("Retention (`tidb_retention__<cluster>`)") == "retention-tidb_retention__cluster"


def test_promtool_check_rules() -> None:
    out = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(rules())} rules found" in out.stdout


def test_promtool_test_rules() -> None:
    out = subprocess.run(
        [promtool(), "test", "rules", RULE_TESTS.name], cwd=RULES_DIR, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_the_issues_rules_are_there() -> None:
    names = {rule["alert"] for rule in rules()}
    assert set(REQUIRED) <= names, f"missing: {set(REQUIRED) - names}"


@pytest.mark.parametrize("rule", rules(), ids=lambda r: f"{r['alert']}-{r['labels'].get('reason', '')}")
def test_each_rule_is_documented(rule: dict[str, Any]) -> None:
    annotations = rule["annotations"]
    assert {"summary", "description", "runbook_url"} <= set(annotations)
    assert rule["labels"]["severity"] in {"critical", "warning"}
    path, _, anchor = annotations["runbook_url"].partition("#")
    assert path == "README.md" and anchor in readme_anchors(), f"{annotations['runbook_url']}: no such README heading"
    if "dag" in annotations:
        pipeline = annotations["dag"].split("__")[0]
        assert f'PIPELINE = "{pipeline}"' in (REPO / "dags" / f"{pipeline}.py").read_text()


def test_rules_read_only_exported_metrics() -> None:
    used = {
        name.removesuffix("_bucket")
        for rule in rules()
        for name in re.findall(r"\btidbops_[a-z_]+\b", rule["expr"] + " ".join(rule["annotations"].values()))
    }
    assert used <= set(metrics.METRIC_NAMES), f"not exported by tidbops.metrics: {used - set(metrics.METRIC_NAMES)}"


def test_every_rule_is_tested_firing_and_not_firing() -> None:
    doc = yaml.safe_load(RULE_TESTS.read_text())
    assert doc["rule_files"] == [RULES.name]
    for name in {rule["alert"] for rule in rules()}:
        fires = quiet = False
        for case in doc["tests"]:
            clusters = {m.group(1) for s in case["input_series"] if (m := re.search(r'cluster="([^"]+)"', s["series"]))}
            for check in case.get("alert_rule_test", []):
                if check["alertname"] != name:
                    continue
                expected = check.get("exp_alerts") or []
                fires |= bool(expected)
                firing = {a["exp_labels"].get("cluster") for a in expected}
                quiet |= not expected or bool(clusters - firing)
        assert fires and quiet, f"{name}: needs a case that fires and one that does not (fires={fires}, quiet={quiet})"


def test_example_scrape_config(tmp_path: Path) -> None:
    """prometheus.example.yml is a valid Prometheus config once its token file exists (it loads alerts.yml)."""
    doc = yaml.safe_load((RULES_DIR / "prometheus.example.yml").read_text())
    [job] = doc["scrape_configs"]
    assert job["metrics_path"] == "/tidbops/metrics" and job["authorization"]["type"] == "Bearer"
    token = tmp_path / "token"
    token.write_text("a-token\n")
    job["authorization"]["credentials_file"] = str(token)
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(doc))
    shutil.copy(RULES, tmp_path / "alerts.yml")
    out = subprocess.run(
        [promtool(), "check", "config", "prometheus.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout and f"{len(rules())} rules found" in out.stdout
