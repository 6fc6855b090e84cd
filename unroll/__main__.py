"""``python -m unroll`` runs the command-line interface."""

from unroll.cli import main

raise SystemExit(main())
