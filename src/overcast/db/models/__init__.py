"""The database schema, one module per area; everything is re-exported here.

Rows have an internal integer ``id`` and a public ``uuid``; only UUIDs cross the API. Tenant rows carry
``account_id`` and ``domain_id`` so list queries scope in SQL.
"""

from overcast.db.models.bundles import *  # noqa: F403
from overcast.db.models.bundles import __all__ as _bundles
from overcast.db.models.catalog import *  # noqa: F403
from overcast.db.models.catalog import __all__ as _catalog
from overcast.db.models.compute import *  # noqa: F403
from overcast.db.models.compute import __all__ as _compute
from overcast.db.models.core import *  # noqa: F403
from overcast.db.models.core import __all__ as _core
from overcast.db.models.infra import *  # noqa: F403
from overcast.db.models.infra import __all__ as _infra
from overcast.db.models.kv import *  # noqa: F403
from overcast.db.models.kv import __all__ as _kv
from overcast.db.models.network import *  # noqa: F403
from overcast.db.models.network import __all__ as _network
from overcast.db.models.simulator import *  # noqa: F403
from overcast.db.models.simulator import __all__ as _simulator
from overcast.db.models.storage import *  # noqa: F403
from overcast.db.models.storage import __all__ as _storage

__all__ = [*_core, *_infra, *_catalog, *_compute, *_network, *_simulator, *_kv, *_bundles, *_storage]
