"""``python -m anchoralign``: the same as the ``anchoralign`` command."""

from .cli import main

raise SystemExit(main())
