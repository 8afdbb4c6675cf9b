"""The ``br`` emulator: BR's command-line contract over the playground's MariaDB-backed clusters.

Run it as ``include/tidbops_playground/bin/br`` (or ``python -m tidbops_playground.br``). Modules:

* ``cli`` / ``flags`` — cobra/pflag-compatible parsing, ``Init``, error reporting
* ``backup`` / ``restore`` / ``log`` / ``debug`` — the commands
* ``storage`` / ``crypter`` / ``codec`` — external storage, AES-CTR, the data-file container
* ``pd`` / ``gc`` — the emulated PD (TSO, GC and service safepoints, log tasks) and the GC run
* ``db`` — the MariaDB side; ``filter`` — BR's table filter; ``tso`` — TSO and Go formatting

The playground daemon calls :func:`tidbops_playground.br.log.advance` and
:func:`tidbops_playground.br.gc.run_gc`. Nothing here imports ``tidbops`` (production code).
"""
