"""`python -m wam.cli ...`: the same command line as `wam ...`."""

from wam.cli import app

app()
