"""oews-api: U.S. occupational wages and employment (BLS OEWS) from a read-only SQLite file."""
