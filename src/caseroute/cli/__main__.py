"""``python -m caseroute.cli``: the same command as the ``caseroute`` script."""

import sys

from caseroute.cli.command import main

sys.exit(main())
