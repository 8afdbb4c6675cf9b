#!/usr/bin/env bash
# Smoke test of the docker-compose stack, for users with Docker (NOT run in this project's CI: no Docker
# engine there; tests/unit/deploy/ checks docker-compose.yaml statically).
#
#   scripts/compose-smoke.sh [--down]
#
# Brings the stack up (building the image), waits for it to be healthy and for Airflow's API, then through Airflow's REST API (/api/v2,
# a JWT from /auth/token) unpauses and triggers, one after the other: a full backup of `demo`, a log backup
# check (which starts log backup the first time) and a restore drill into `scratch1`; prints each run's
# outcome and its tasks' states. Exit status 0 when all three succeeded. --down stops the stack afterwards
# (its volumes stay; `docker compose down -v` removes them).
# Needs: docker with the compose plugin (or docker-compose), curl, python3, and a .env (from .env.example).
set -euo pipefail
cd "$(dirname "$0")/.."

DOWN=0
[ "${1:-}" = "--down" ] && DOWN=1
API="${TIDBOPS_SMOKE_API:-http://127.0.0.1:8080}"
UP_TIMEOUT="${TIDBOPS_SMOKE_UP_TIMEOUT:-1200}"    # seconds: first build and TiKV's start are slow
RUN_TIMEOUT="${TIDBOPS_SMOKE_RUN_TIMEOUT:-1800}"  # seconds per DAG run
POLL="${TIDBOPS_SMOKE_POLL:-10}"                  # seconds between two looks at a run
ENV_FILE="${TIDBOPS_SMOKE_ENV_FILE:-.env}"        # another env file is passed to compose as --env-file
DAGS=(tidb_backup_full__demo tidb_log_backup_check__demo tidb_restore_drill__demo)

if docker compose version >/dev/null 2>&1; then COMPOSE=(docker compose); else COMPOSE=(docker-compose); fi
[ "$ENV_FILE" = .env ] || COMPOSE+=(--env-file "$ENV_FILE")
[ -f "$ENV_FILE" ] || { echo "error: no $ENV_FILE: cp .env.example .env and replace every change-me" >&2; exit 2; }
if grep -q '=change-me$' "$ENV_FILE"; then echo "error: $ENV_FILE still holds change-me placeholders" >&2; exit 2; fi

work="$(mktemp -d)"
chmod 700 "$work"
trap 'rm -rf "$work"; [ "$DOWN" = 1 ] && "${COMPOSE[@]}" down' EXIT

json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# Compose v2 waits for every service to be healthy (and the one-shot jobs to complete); v1 cannot, and the
# wait below for Airflow's API (which starts after them all) stands in.
UP=(up -d --build)
[ "${COMPOSE[0]}" = docker ] && UP+=(--wait --wait-timeout "$UP_TIMEOUT")
echo "== up: ${COMPOSE[*]} ${UP[*]}"
# Some Compose v2 releases report the one-shot jobs' normal exit as a failure of --wait: say so and go on
# to the API wait, which fails the run if the stack is really not up.
"${COMPOSE[@]}" "${UP[@]}" || echo "warning: ${COMPOSE[*]} up returned $?; waiting for the API anyway" >&2

echo "== waiting for Airflow's API at $API (at most ${UP_TIMEOUT}s)"
deadline=$((SECONDS + UP_TIMEOUT))
until curl -fsS -o /dev/null "$API/api/v2/version"; do
  if [ $SECONDS -ge $deadline ]; then
    "${COMPOSE[@]}" ps
    echo "error: Airflow's API did not answer in ${UP_TIMEOUT}s" >&2
    exit 1
  fi
  sleep 5
done
"${COMPOSE[@]}" ps

# The token: the password goes through stdin and the header through a 0600 file, never through argv.
password="$(sed -n 's/^AIRFLOW_ADMIN_PASSWORD=//p' "$ENV_FILE")"
python3 -c 'import json,sys; print(json.dumps({"username": "admin", "password": sys.stdin.read().strip()}))' \
  <<<"$password" >"$work/login.json"
token="$(curl -fsS -X POST -H 'Content-Type: application/json' --data @"$work/login.json" "$API/auth/token" \
  | json 'd["access_token"]')"
printf 'Authorization: Bearer %s\n' "$token" >"$work/auth"
api() {  # api METHOD PATH [JSON-BODY]
  local body="${3:-}"
  if [ -n "$body" ]; then
    curl -fsS -X "$1" -H @"$work/auth" -H 'Content-Type: application/json' --data "$body" "$API$2"
  else
    curl -fsS -X "$1" -H @"$work/auth" "$API$2"
  fi
}

echo "== waiting for the DAGs to be parsed"
deadline=$((SECONDS + 300))
until api GET "/api/v2/dags/${DAGS[0]}" >/dev/null 2>&1; do
  if [ $SECONDS -ge $deadline ]; then
    echo "error: ${DAGS[0]} is not in Airflow after 300s; import errors:" >&2
    api GET /api/v2/importErrors | json 'json.dumps(d, indent=1)' >&2 || true
    exit 1
  fi
  sleep 5
done

failed=0
for dag in "${DAGS[@]}"; do
  echo "== $dag"
  api PATCH "/api/v2/dags/$dag" '{"is_paused": false}' >/dev/null
  run_id="$(api POST "/api/v2/dags/$dag/dagRuns" '{"logical_date": null, "conf": {}}' | json 'd["dag_run_id"]')"
  quoted="$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$run_id")"
  deadline=$((SECONDS + RUN_TIMEOUT))
  state=queued
  while [ "$state" != success ] && [ "$state" != failed ]; do
    if [ $SECONDS -ge $deadline ]; then state="still $state after ${RUN_TIMEOUT}s"; break; fi
    sleep "$POLL"
    state="$(api GET "/api/v2/dags/$dag/dagRuns/$quoted" | json 'd["state"]')"
  done
  echo "   run $run_id: $state"
  api GET "/api/v2/dags/$dag/dagRuns/$quoted/taskInstances" \
    | json '"\n".join("     {}: {}".format(t["task_id"], t["state"]) for t in d["task_instances"])'
  [ "$state" = success ] || failed=1
done

if [ $failed = 0 ]; then
  echo "== smoke test passed: a full backup, a log backup check and a drill succeeded"
else
  echo "== smoke test FAILED: see the task logs in the UI ($API) or: ${COMPOSE[*]} logs airflow-scheduler" >&2
fi
exit $failed
