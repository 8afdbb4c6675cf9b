"""The backup catalog: every backup of every cluster, its chain, its manifest in storage, and retention.

``records`` (plain data), ``planning`` (what to back up next, what retention may expire) and ``info`` are
pure; ``store`` and ``migrations`` hold the SQL (SQLAlchemy Core, SQLite or any MySQL-compatible server);
``manifest`` reads and writes ``tidbops-manifest.json`` next to each backup, from which the catalog can be
rebuilt. Import the submodule you need: importing this package loads nothing else.
"""
