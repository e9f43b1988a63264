"""Run the command line with ``python -m buquet``."""

from buquet.cli import main

if __name__ == "__main__":
    main()
