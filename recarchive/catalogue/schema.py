"""Imports every domain's models so that :data:`Base.metadata` holds the whole schema.

Migrations and tests import this module; application code imports the
models it needs directly.
"""

from __future__ import annotations

from recarchive.access import models as access_models
from recarchive.catalogue import intake as intake_models
from recarchive.catalogue import models as catalogue_models
from recarchive.catalogue import restrictions as restriction_models
from recarchive.catalogue.database import Base
from recarchive.disputes import models as dispute_models
from recarchive.privacy import models as privacy_models
from recarchive.qa import models as qa_models
from recarchive.retention import models as retention_models

metadata = Base.metadata

__all__ = [
    "access_models",
    "catalogue_models",
    "dispute_models",
    "intake_models",
    "metadata",
    "privacy_models",
    "qa_models",
    "restriction_models",
    "retention_models",
]
