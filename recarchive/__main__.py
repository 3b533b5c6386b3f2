"""``python -m recarchive`` runs the command line."""

from recarchive.cli import main

main()
