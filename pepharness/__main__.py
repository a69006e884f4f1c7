"""`python -m pepharness`: the same as the `pepharness` command."""

from pepharness.cli import main

main()
