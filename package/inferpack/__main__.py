import sys

from inferpack.cli import main

sys.exit(main())
