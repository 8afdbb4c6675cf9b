"""Kubernetes manifests for BR and scratch clusters, built by pure functions (no Kubernetes client)."""
