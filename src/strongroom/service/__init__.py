"""The domain: activities, their catalog and pipeline, authentication, queries.

This module is the service facade: the one door `api/` (all of HTTP) uses. It exports the
composed service and the few types a transport needs; everything else stays inside.
"""

from strongroom.service.catalog import CATALOG, Action, ActivityType, Catalog, Resource, RootOnly
from strongroom.service.facade import Strongroom
from strongroom.service.metrics import Metrics

__all__ = ["CATALOG", "Action", "ActivityType", "Catalog", "Metrics", "Resource", "RootOnly", "Strongroom"]
