"""`python -m aggregator.cli`: the same as the `aggregator` command."""

from aggregator.cli import main

raise SystemExit(main())
