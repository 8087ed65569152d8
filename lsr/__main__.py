"""``python -m lsr ...`` runs the command line, as the ``lsr`` script does."""

from .cli import run

run()
