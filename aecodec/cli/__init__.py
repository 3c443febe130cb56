"""The ``aecodec`` command line: one click group, its commands in the modules of this package
(``commands``: compress, decompress, info, models, bench, train; ``denoise``; ``retrieval``:
index, similar; ``io``: the output-path rules they share)."""

from __future__ import annotations

import click

import aecodec
from aecodec.cli.commands import bench, compress, decompress, info, models, train
from aecodec.cli.denoise import denoise
from aecodec.cli.retrieval import index_cmd, similar_cmd

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(aecodec.__version__, "-V", "--version", prog_name="aecodec")
def main() -> None:
    """aecodec: a learned image codec (autoencoder + zstd) and its .aec files.

    \b
      aecodec compress face.png            -> face.aec
      aecodec decompress face.aec          -> face.decoded.png
      aecodec info face.aec                   the header (the file is checked, not decoded)
      aecodec models                          the installed models
    """


for _command in (compress, decompress, info, models, bench, train, denoise):
    main.add_command(_command)
main.add_command(index_cmd, "index")
main.add_command(similar_cmd, "similar")
