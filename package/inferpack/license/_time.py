"""UTC timestamps as every license file, request and state file writes them."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def format_utc(moment: datetime) -> str:
    """``2025-01-31T23:59:59Z``: second precision, always UTC."""
    return require_aware(moment).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc(text: str) -> datetime:
    """The inverse of ``format_utc``; ``ValueError`` for anything without a timezone."""
    return require_aware(datetime.fromisoformat(text)).astimezone(UTC)


def require_aware(moment: datetime) -> datetime:
    # A naive datetime would be compared in the host's local time: refuse it outright.
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment!r} has no timezone; license times are UTC")
    return moment
