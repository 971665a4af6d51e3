"""``python -m caseroute``: the same command as the ``caseroute`` script."""

import sys

from caseroute.cli.entry import main

if __name__ == "__main__":
    sys.exit(main())
