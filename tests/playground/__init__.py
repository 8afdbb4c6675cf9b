"""A package (not a plain directory) so that its conftest's playground (scope "package": MariaDB servers, the
writer and GC daemon) stops when its last test ends, instead of running through the rest of `make test`."""
