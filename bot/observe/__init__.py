"""Being watched: Prometheus metrics, a health endpoint, and the gateway's state per shard (DESIGN §6).

`metrics` defines every series and the hooks that move them; `gateway` follows this process's shard
connections; `server` serves `/metrics` and `/healthz` when METRICS_PORT is set. JSON logs live with
the rest of logging, in `bot.logs`.
"""

from bot.observe.gateway import Gateway
from bot.observe.metrics import Metrics
from bot.observe.server import ObservationServer

__all__ = ["Gateway", "Metrics", "ObservationServer"]
