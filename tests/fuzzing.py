"""The fuzz tests' budget: short in the suite, long on demand.

``MOLSTREAM_FUZZ_EXAMPLES=100000 .venv/bin/python -m pytest -q tests/unit -k "fuzz or garbled
or every_offset or random"`` runs every property test over the byte parsers with that many
examples each.
"""

from __future__ import annotations

import os


def examples(default: int) -> int:
    """Examples per property test: ``MOLSTREAM_FUZZ_EXAMPLES`` if set, else ``default``."""
    return int(os.environ.get("MOLSTREAM_FUZZ_EXAMPLES", default))
