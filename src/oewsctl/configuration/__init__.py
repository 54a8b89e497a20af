"""The inventory file oewsctl.yaml: its schema, loading it, and writing one (`oewsctl init`)."""
