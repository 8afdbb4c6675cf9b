"""A package (not a plain directory) so that its conftest's fixtures of scope "package" (the playground, Airflow)
stop when its last test ends, instead of running idle through the rest of `make test`."""
