"""`python -m styleengine ...` runs the CLI (same as the `styleengine` console script)."""

from styleengine.cli import main

main()
