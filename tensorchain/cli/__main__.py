"""``python -m tensorchain.cli``: the command line."""

import sys

from . import main

if __name__ == "__main__":  # not when imported (every module is, by the docstring tests)
    sys.exit(main())
