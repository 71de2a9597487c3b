"""HTTP to the local services (fronts, backends) with the standard library.

The installer and trouble_shooting must reach 127.0.0.1 directly: an operator's ``http_proxy``
(common on corporate hosts) would otherwise send loopback probes to the proxy and fail them.
"""

from __future__ import annotations

import urllib.request

opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
