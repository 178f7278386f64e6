"""``python -m tensorchain``: the command line, as the ``tensorchain`` command."""

import sys

from .cli import main

if __name__ == "__main__":  # not when imported (every module is, by the docstring tests)
    sys.exit(main())
