"""When a kernel-log event happened, on the wall clock and relative to the audit.

dmesg stamps lines with seconds since boot, which nobody can place in time
without the guest's boot time (the probe reads `btime` from /proc/stat).
Journal and syslog lines already carry a date. Either way the report shows
the date in UTC and how long before the audit it was ("2 days ago"), and
keeps the original stamp beside it as evidence.

The boot-time conversion is approximate for guests that were suspended or
migrated, because the kernel's clock behind dmesg stops while the guest does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_UPTIME = re.compile(r"\[?\s*(\d+(?:\.\d+)?)\]?")
_SYSLOG = re.compile(r"([A-Z][a-z]{2}) +(\d{1,2}) (\d\d):(\d\d):(\d\d)(?:\.\d+)?")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class EventTime:
    #: "2026-11-22 21:14 UTC", or None when the stamp cannot be placed.
    wall: str | None
    #: "2 days ago" relative to the audit, or None.
    ago: str | None
    #: The stamp as the log printed it ("[61234.110000]", a date...).
    stamp: str | None


def parse_instant(text: str | None) -> datetime | None:
    """An ISO-8601 time (as in report and snapshot metadata) in UTC, or None."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def ago(then: datetime, now: datetime) -> str:
    """ "just now", "5 minutes ago", "3 hours ago", "2 days ago" (or "in 2 hours" ahead)."""
    seconds = (now - then).total_seconds()
    if abs(seconds) < 60:
        return "just now"
    span = abs(seconds)
    if span < 7200:
        count, unit = int(span // 60), "minute"
    elif span < 172800:
        count, unit = int(span // 3600), "hour"
    else:
        count, unit = int(span // 86400), "day"
    words = f"{count} {unit}{'s' if count != 1 else ''}"
    return f"in {words}" if seconds < 0 else f"{words} ago"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


def _syslog(text: str, now: datetime) -> datetime | None:
    """ "Nov 23 14:02:11" has no year: the latest such time not after the audit."""
    match = _SYSLOG.fullmatch(text.strip())
    if match is None or match.group(1) not in _MONTHS:
        return None
    month = _MONTHS.index(match.group(1)) + 1
    day, hour, minute, second = (int(g) for g in match.group(2, 3, 4, 5))
    for year in (now.year, now.year - 1):
        try:
            value = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        except ValueError:
            continue
        if value <= now + timedelta(days=1):
            return value
    return None


def _dated(text: str, now: datetime) -> datetime | None:
    stamp = text.strip().strip("[]")
    iso = parse_instant(stamp.replace(",", "."))
    if iso is not None:
        return iso.astimezone(UTC)
    for layout in ("%a %b %d %H:%M:%S %Y", "%a %Y-%m-%d %H:%M:%S %Z"):
        try:
            return datetime.strptime(stamp, layout).replace(tzinfo=UTC)
        except ValueError:
            continue
    return _syslog(stamp, now)


def event_time(timestamp: str | None, boot_epoch_s: int | None, now: datetime | None) -> EventTime:
    """Place one event's stamp in time; `now` is when the guest was read."""
    if not timestamp:
        return EventTime(None, None, None)
    then: datetime | None = None
    uptime = _UPTIME.fullmatch(timestamp.strip())
    if uptime is not None:
        if boot_epoch_s is None:
            # Without the boot time, say what the stamp means rather than show it bare.
            return EventTime(None, f"{_duration(float(uptime.group(1)))} after boot", timestamp)
        then = datetime.fromtimestamp(boot_epoch_s + float(uptime.group(1)), UTC)
    elif now is not None:
        then = _dated(timestamp, now)
    else:
        then = _dated(timestamp, datetime.now(UTC))
    if then is None:
        return EventTime(None, None, timestamp)
    wall = then.strftime("%Y-%m-%d %H:%M UTC")
    return EventTime(wall, ago(then, now) if now is not None else None, timestamp)


def boot_time(boot_epoch_s: int, now: datetime | None) -> EventTime:
    """When the guest booted, written like an event."""
    return event_time("0.0", boot_epoch_s, now)
