"""tidbops: the pure core of the TiDB data-protection platform. Nothing here imports Airflow."""
