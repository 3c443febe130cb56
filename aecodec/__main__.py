"""``python -m aecodec``: the command line, as the ``aecodec`` console script."""

from __future__ import annotations

from aecodec.cli import main

__all__: list[str] = []

if __name__ == "__main__":
    main(prog_name="aecodec")
