"""inferpack: an offline, packaged inference appliance with an EasyDL-compatible HTTP API."""

__version__ = "0.1.0"
