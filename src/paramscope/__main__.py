"""``python -m paramscope``: the same command as the ``paramscope`` console script."""

from paramscope.cli import main

main()
