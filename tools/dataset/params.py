"""Names used by dataset code: the slug checks and `ExtractParams` (the extract job's request model).

The parameters themselves are declared once, in graphtune.tools.requests.extract; this module
keeps the names other modules and tests import.
"""

from __future__ import annotations

from graphtune.tools.dataset.names import NAME_PATTERN, check_name, named_folder
from graphtune.tools.requests.extract import KNOWLEDGE_PHRASINGS, ExtractRequest

ExtractParams = ExtractRequest

__all__ = ["KNOWLEDGE_PHRASINGS", "NAME_PATTERN", "ExtractParams", "check_name", "named_folder"]
