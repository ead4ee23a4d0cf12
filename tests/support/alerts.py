"""The alerts plan_alerts would send, as a list: a shortcut only the tests use."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from datetime import datetime

from aggregator.models import AlertRecord
from aggregator.models import AlertSettings
from aggregator.service.alerts import Alert
from aggregator.service.alerts import AlertKey
from aggregator.service.alerts import plan_alerts
from aggregator.service.status import SourceStatus


def alerts_due(
    rows: Sequence[SourceStatus],
    previous: Mapping[AlertKey, AlertRecord],
    now: datetime,
    settings: AlertSettings = AlertSettings(),  # noqa: B008 - frozen, so sharing it is safe
) -> list[Alert]:
    return list(plan_alerts(rows, previous, now, settings).alerts)
