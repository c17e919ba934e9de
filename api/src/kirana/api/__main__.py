"""`python -m kirana.api` is the `kirana` command."""

from kirana.api.cli import main

main()
