# The Airflow image of tidbops (docker-compose.yaml builds it; so can a Helm deployment, docs/deploy.md):
# Airflow's official image of the version requirements.txt pins, our production requirements under
# constraints.txt, the tidbops and tidbops_airflow packages (never the playground), the DAG files and the
# plugin, and the br binary of the clusters' TiDB version. tests/unit/deploy/ holds the versions equal.

# br of the fleet's TiDB version: BR must match the cluster (docs/deploy.md, "Upgrading TiDB and BR").
FROM pingcap/br:v8.5.1 AS br

FROM apache/airflow:3.3.2-python3.11

USER root
COPY --from=br /br /usr/local/bin/br
RUN mkdir -p /opt/tidbops/src /opt/airflow/auth \
    && chown -R airflow:0 /opt/tidbops /opt/airflow/auth \
    && chmod 0750 /opt/airflow/auth
USER airflow

# Dependencies first (a layer that survives code edits). apache-airflow is already in the image at the pin.
COPY --chown=airflow:0 requirements.txt constraints.txt /opt/tidbops/
RUN pip install --no-cache-dir -r /opt/tidbops/requirements.txt -c /opt/tidbops/constraints.txt

# Our packages: setup.py maps tidbops and tidbops_airflow only (the playground is another distribution).
# Without a C compiler in the image the optional slow-log scanner is skipped: the pure-Python path gives
# identical results.
COPY --chown=airflow:0 pyproject.toml setup.py /opt/tidbops/src/
COPY --chown=airflow:0 include/tidbops /opt/tidbops/src/include/tidbops
COPY --chown=airflow:0 plugins/tidbops_airflow /opt/tidbops/src/plugins/tidbops_airflow
RUN pip install --no-cache-dir --no-deps /opt/tidbops/src && rm -rf /opt/tidbops/src

COPY --chown=airflow:0 dags /opt/airflow/dags
COPY --chown=airflow:0 plugins/tidbops_plugin.py /opt/airflow/plugins/tidbops_plugin.py
COPY --chown=airflow:0 include/config /opt/tidbops/config
COPY --chown=airflow:0 include/expectations /opt/tidbops/expectations

ENV TIDBOPS_FLEET_CONFIG=/opt/tidbops/config/compose.yaml \
    TIDBOPS_EXPECTATIONS_DIR=/opt/tidbops/expectations

RUN br --version && python -c "import tidbops, tidbops_airflow" \
    && ! python -c "import tidbops_playground" 2>/dev/null
