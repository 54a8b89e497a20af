"""The sample database bundled in the package (real May 2025 BLS data, cross-industry).

Holds the U.S., every state and territory, the 25 largest metro areas by employment,
and the areas of the shared small flat-file sample (Austin, San Jose, Seattle, New York,
San Francisco, Washington DC, a nonmetro area). ``oewsctl serve`` uses it when no
``--db`` is given. Rebuild it with ``python -m oews_api.sample.make FLATFILE_DIR``.
"""

from __future__ import annotations

from pathlib import Path

SAMPLE_DB: Path = Path(__file__).parent / "oews-sample.db"
