"""`python -m tfcompress`: the command line."""

from tfcompress.cli import run

run()
