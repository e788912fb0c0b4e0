"""Names used by dataset code: the slug checks and `ExtractParams` (the extract job's engine config).

The settings themselves are declared once, in graphtune.tools.dataset.config; this module keeps
the names other modules and tests import.
"""

from __future__ import annotations

from graphtune.tools.dataset.config import KNOWLEDGE_PHRASINGS, ExtractConfig
from graphtune.tools.dataset.names import NAME_PATTERN, check_name, named_folder

ExtractParams = ExtractConfig

__all__ = ["KNOWLEDGE_PHRASINGS", "NAME_PATTERN", "ExtractParams", "check_name", "named_folder"]
