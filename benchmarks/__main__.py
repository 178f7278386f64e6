import sys

from . import pin_one_core

pin_one_core()  # before numpy is imported

from .run import main  # noqa: E402

sys.exit(main())
