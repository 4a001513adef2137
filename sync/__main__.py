"""``python -m sync``: the ``storeedge central`` commands on their own (see `sync.cli`)."""

import sys

from sync.cli import main

sys.exit(main())
