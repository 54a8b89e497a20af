"""Thin clients for what oewsctl talks to: SSH and transfers, Kubernetes, Key Vault, the registry, the Docker engine."""
