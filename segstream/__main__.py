"""``python -m segstream`` runs the command line."""

import sys

from segstream.cli import main

sys.exit(main())
