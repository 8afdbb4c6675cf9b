"""BR: argv building, process running, output parsing (pure)."""
