"""`python -m kerasarch` runs the command line."""

import sys

from kerasarch.cli import main

sys.exit(main())
