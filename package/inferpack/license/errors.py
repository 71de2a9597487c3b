"""The one exception the license code raises for anything that cannot be used."""

from __future__ import annotations


class LicenseError(Exception):
    """A license, request, snapshot, key or clock state that cannot be used.

    ``reason`` is one line meant for people: it becomes the 337000 ``error_msg`` detail, the
    installer's message and the CLI's error line.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
