"""`python -m kirana.workers` runs the worker process."""

from kirana.workers.main import main

main()
