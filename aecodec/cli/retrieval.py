"""The `aecodec index` and `aecodec similar` commands: build a code index, search it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click
from tqdm import tqdm

from aecodec.cli.io import check_folder
from aecodec.errors import AecError, AecOutputError

__all__ = ["index_cmd", "similar_cmd"]


def _fail(message: str) -> NoReturn:
    """One line on stderr, ``aecodec: message``, and exit status 1, as every command does."""
    click.echo(f"aecodec: {message}", err=True)
    sys.exit(1)


def _line(path: str, reason: str) -> str:
    """``aecodec: PATH: reason``, PATH once even if the reason already starts with it."""
    return f"aecodec: {path}: {reason[len(path) + 2:] if reason.startswith(path + ': ') else reason}"


@click.command("index")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default="index.npz",
              show_default=True, help="Index file to write (.npz).")
@click.option("-m", "--model", default=None,
              help="Model that encodes images [default: the model of the first .aec input, else conv-faces].")
@click.option("-q", "--quality", type=click.FloatRange(1, 100), default=None,
              help="Quality images are encoded at, 1 to 100 [default: 50].")
@click.option("-d", "--descriptor", type=click.Choice(["centre", "full", "grid4"]), default=None,
              help="How codes become vectors (see docs/retrieval.md) [default: centre].")
@click.option("--update", is_flag=True, help="Add new files to an existing index (paths already in it are skipped).")
@click.option("-f", "--force", is_flag=True, help="Overwrite an existing index.")
@click.option("--progress/--no-progress", default=None,
              help="Show a progress bar on stderr [default: when stderr is a terminal].")
def index_cmd(paths: tuple[Path, ...], output: Path, model: str | None, quality: float | None,
              descriptor: str | None, update: bool, force: bool, progress: bool | None) -> None:
    """Index images and .aec files (folders are walked) for `aecodec similar`.

    .aec files are read without decoding a pixel; images are encoded with the model. Files
    that cannot be read, are corrupt or come from another model are reported on stderr and
    skipped; the exit status is then 1. If nothing can be indexed, no index is written.
    """
    from aecodec.codec import check_quality
    from aecodec.defaults import DEFAULT_QUALITY
    from aecodec.retrieval import DEFAULT_DESCRIPTOR, Index, build_index

    skipped: list[str] = []
    bar = sys.stderr.isatty() if progress is None else progress

    def on_skip(path: str, reason: str) -> None:
        skipped.append(path)
        tqdm.write(_line(path, reason), file=sys.stderr)  # above the progress bar, not through it

    try:
        check_folder(output)
        if update and output.exists():
            index = Index.load(output)
            q = None if quality is None else check_quality(quality)
            for name, given, have in (("model", model, index.model), ("quality", q, index.quality),
                                      ("descriptor", descriptor, index.descriptor)):
                if given is not None and given != have:
                    _fail(f"{output} holds {name} {have}; it cannot be updated with {name} {given} "
                          f"(build a new index with -f)")
            result = index.update(paths, progress=bar, on_skip=on_skip)
            added = len(result.added)
            present = f", {len(result.present)} already indexed" if result.present else ""
        else:
            if output.exists() and not force:
                raise AecOutputError(f"{output} exists; use -f/--force to overwrite it or --update to add to it")
            index = build_index(paths, model=model, quality=DEFAULT_QUALITY if quality is None else quality,
                                descriptor=descriptor or DEFAULT_DESCRIPTOR, progress=bar, on_skip=on_skip)
            added, present = len(index), ""
        if not len(index):
            if skipped:
                _fail(f"no index written: none of the {len(skipped)} inputs could be indexed")
            _fail(f"no index written: no images or .aec files in {' '.join(map(str, paths))}")
        index.save(output, overwrite=True)
    except AecError as exc:
        _fail(str(exc))
    click.echo(f"{output}: {len(index)} files ({added} added{present}, {len(skipped)} skipped), "
               f"model {index.model}", err=True)
    if skipped:
        raise SystemExit(1)


@click.command("similar")
@click.argument("query", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-i", "--index", "index_path", type=click.Path(dir_okay=False, path_type=Path),
              default="index.npz", show_default=True, help="Index built by `aecodec index`.")
@click.option("-k", type=click.IntRange(min=1), default=5, show_default=True, help="How many neighbours.")
@click.option("--sheet", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write a contact sheet PNG: the query, then the neighbours with their distances.")
@click.option("-f", "--force", is_flag=True, help="Overwrite an existing --sheet.")
def similar_cmd(query: Path, index_path: Path, k: int, sheet: Path | None, force: bool) -> None:
    """Print the K files of the index most similar to QUERY (an image or a .aec file).

    One line per neighbour: rank, cosine distance (0 = same code direction, 2 = opposite), path.
    The query itself is left out when it is in the index. A .aec file of another model than
    the index's is decoded, and its pixels encoded with the index's model.
    """
    from aecodec.retrieval import Index
    from aecodec.sheet import similar_sheet

    try:
        if sheet is not None:
            if sheet.exists() and not force:
                raise AecOutputError(f"{sheet} exists (use -f to overwrite it)")
            check_folder(sheet)
        index = Index.load(index_path)
        made_by = _other_model(query, index.model)
        if made_by is not None:
            click.echo(f"aecodec: note: {query} was made with {made_by}; its decoded pixels are encoded "
                       f"with the index's model, {index.model}", err=True)
        results = index.search(query, k)
        for rank, (path, dist) in enumerate(results, 1):
            click.echo(f"{rank}\t{dist:.4f}\t{path}")
        if sheet is not None:
            for path, reason in similar_sheet(query, results, sheet):
                click.echo(_line(path, reason) + " (a grey box on the sheet)", err=True)
    except AecError as exc:
        _fail(str(exc))


def _other_model(path: Path, model: str) -> str | None:
    """The model that made ``path`` if it is a `.aec` file of a model other than ``model``."""
    from aecodec.container import read_header
    try:
        with open(path, "rb") as f:
            made_by = read_header(f.read(512)).model
    except (OSError, AecError):
        return None
    return made_by if made_by != model else None
