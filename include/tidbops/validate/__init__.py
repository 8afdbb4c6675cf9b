"""Checking restored data against its source: schema equality and chunked content fingerprints.

Works over any DB-API cursor of a MySQL-protocol server (TiDB in production, MariaDB in the playground);
nothing here imports Airflow. ``schema`` reads and compares table definitions; ``fingerprint`` splits
tables into primary-key ranges and compares ``COUNT(*)`` and ``BIT_XOR(CRC32(CONCAT_WS(…)))`` per range,
the way sync-diff-inspector does, with the source read as of the restore point.
"""
