"""Alert delivery: the outbox dispatcher and its channels (Discord, Telegram, webhook, console).

    config = load_alerting_config("pocketwatcher.toml")      # or None: the environment alone
    async with conn.transaction():                           # the producer, with the alert
        await enqueue(conn, alert, config.channels_for(alert.trigger, alert.channels))
    await Dispatcher(database_url_or_pool, config).run(stop_event)

Modules: ``config`` (channels, routes, secrets), ``render`` (what each channel shows),
``channels/`` (one module per kind behind ``Channel``), ``pacing`` (per-destination
rate limits), ``outbox`` (every SQL statement), ``dispatcher`` (claim, send, record,
retry), ``redact`` (secrets out of logs and errors), ``testing`` (a fault-injecting
fake of the services), ``cli`` (``pocketwatcher alerts ...``).
"""

from .channels import Channel, Outcome, make_channel
from .config import AlertingConfig, AlertingConfigError, AlertingSection, load_alerting_config
from .dispatcher import Dispatcher
from .outbox import enqueue, retry_dead
from .render import AlertView

__all__ = ["AlertView", "AlertingConfig", "AlertingConfigError", "AlertingSection", "Channel", "Dispatcher",
           "Outcome", "enqueue", "load_alerting_config", "make_channel", "retry_dead"]
