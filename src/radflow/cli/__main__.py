"""``python -m radflow.cli``: the ``radflow`` command."""

import sys

from radflow.cli import main

sys.exit(main())
