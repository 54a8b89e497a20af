"""One module per operation: each builds Plans (data) that oewsctl.core.runner executes."""
