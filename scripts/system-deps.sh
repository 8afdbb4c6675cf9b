#!/usr/bin/env bash
# Debian packages the test suite needs. Installs what is missing when run as root; otherwise says what to run.
set -euo pipefail
need=()
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
command -v pt-query-digest >/dev/null 2>&1 || need+=(percona-toolkit)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# a real Prometheus server and promtool (check/test the alert rules, scrape /metrics in e2e)
{ command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; } || need+=(prometheus)
# PostgreSQL: the playground's Airflow keeps its metadata DB on a private instance (tidbops_playground/postgres.py)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
# the Compose client only (no engine): tests/unit/deploy/ runs `docker-compose config -q` on docker-compose.yaml
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "error: missing Debian packages: ${need[*]}" >&2
  echo "       run: sudo apt-get update && sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo "installing Debian packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The package's own service is not ours: the playground runs private instances.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now mariadb postgresql prometheus prometheus-node-exporter >/dev/null 2>&1 || true; fi
