"""The fleet view, the cluster page and the audit of backup history, read from the catalog (#13).

``models`` holds the JSON-ready shapes; ``queries`` reads them from a ``Catalog`` with a few grouped
queries (no per-cluster loop of queries), for the UI plugin's pages and JSON API and for the
Prometheus collector (``tidbops.metrics``). Nothing here imports Airflow: callers pass the clusters
(with their policy) that the user may see.
"""
