"""The domain: activities, their catalog and pipeline, authentication, queries.

This module is the service facade: the one door `api/` (all of HTTP) uses. It exports the
composed service and the few types a transport needs; everything else stays inside.
"""

from strongroom.service.activities.schema import JSON_ID, json_array, json_object, json_string
from strongroom.service.catalog import CATALOG, Action, ActivityType, Catalog, Resource, RootOnly
from strongroom.service.dashboard import Dashboard, Login, Viewer
from strongroom.service.ethrpc import PROXIED, RpcError, Upstream
from strongroom.service.facade import Strongroom
from strongroom.service.metrics import Metrics

__all__ = [
    "CATALOG",
    "JSON_ID",
    "PROXIED",
    "Action",
    "ActivityType",
    "Catalog",
    "Dashboard",
    "Login",
    "Metrics",
    "Resource",
    "RootOnly",
    "RpcError",
    "Strongroom",
    "Upstream",
    "Viewer",
    "json_array",
    "json_object",
    "json_string",
]
