"""The playground: emulated TiDB clusters (real MariaDB + br emulator + real S3 server) for tests and the demo."""
