"""``python -m inferpack.client URL IMAGE...``: the predict command where only the client is installed."""

import sys

from inferpack.client.cli import main

sys.exit(main())
