"""``python -m sandflow`` (and ``torchrun -m sandflow``): the ``sandflow`` command."""

from sandflow.cli import main

raise SystemExit(main())
