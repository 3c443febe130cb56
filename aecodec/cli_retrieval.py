"""The `aecodec index` and `aecodec similar` commands: build a code index, search it."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from tqdm import tqdm

from aecodec.errors import AecError

__all__ = ["index_cmd", "similar_cmd"]


def _fail(exc: AecError) -> click.ClickException:
    return click.ClickException(str(exc))


@click.command("index")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default="index.npz",
              show_default=True, help="Index file to write (.npz).")
@click.option("-m", "--model", default=None,
              help="Model that encodes images [default: the model of the first .aec input, else conv-faces].")
@click.option("-q", "--quality", type=float, default=None, help="Quality images are encoded at [default: 50].")
@click.option("-d", "--descriptor", type=click.Choice(["centre", "full", "grid4"]), default=None,
              help="How codes become vectors (see docs/retrieval.md) [default: centre].")
@click.option("--update", is_flag=True, help="Add new files to an existing index (paths already in it are skipped).")
@click.option("-f", "--force", is_flag=True, help="Overwrite an existing index.")
@click.option("--progress/--no-progress", default=True, help="Show a progress bar on stderr.")
def index_cmd(paths: tuple[Path, ...], output: Path, model: str | None, quality: float | None,
              descriptor: str | None, update: bool, force: bool, progress: bool) -> None:
    """Index images and .aec files (folders are walked) for `aecodec similar`.

    .aec files are read without decoding a pixel; images are encoded with the model. Files
    that cannot be read, are corrupt or come from another model are reported on stderr and
    skipped; the exit status is then 1.
    """
    from aecodec.codec import DEFAULT_QUALITY, check_quality
    from aecodec.retrieval import DEFAULT_DESCRIPTOR, Index, build_index

    skipped: list[str] = []

    def on_skip(path: str, reason: str) -> None:
        skipped.append(path)
        msg = reason if reason.startswith(path) else f"{path}: {reason}"
        tqdm.write(f"skipped {msg}", file=sys.stderr)  # above the progress bar, not through it

    try:
        if update and output.exists():
            index = Index.load(output)
            q = None if quality is None else check_quality(quality)
            for name, given, have in (("model", model, index.model), ("quality", q, index.quality),
                                      ("descriptor", descriptor, index.descriptor)):
                if given is not None and given != have:
                    raise click.UsageError(f"{output} holds {name} {have}; it cannot be updated with "
                                           f"{name} {given} (build a new index with -f)")
            result = index.update(paths, progress=progress, on_skip=on_skip)
            added = len(result.added)
            present = f", {len(result.present)} already indexed" if result.present else ""
        else:
            if output.exists() and not force:
                raise click.UsageError(f"{output} exists; use -f/--force to overwrite it or --update to add to it")
            index = build_index(paths, model=model, quality=DEFAULT_QUALITY if quality is None else quality,
                                descriptor=descriptor or DEFAULT_DESCRIPTOR, progress=progress, on_skip=on_skip)
            added, present = len(index), ""
        index.save(output, overwrite=True)
    except AecError as exc:
        raise _fail(exc) from None
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
def similar_cmd(query: Path, index_path: Path, k: int, sheet: Path | None) -> None:
    """Print the K files of the index most similar to QUERY (an image or a .aec file).

    One line per neighbour: rank, cosine distance (0 = same code direction, 2 = opposite), path.
    The query itself is left out when it is in the index.
    """
    from aecodec.retrieval import Index
    from aecodec.sheet import similar_sheet

    try:
        index = Index.load(index_path)
        results = index.search(query, k)
        for rank, (path, dist) in enumerate(results, 1):
            click.echo(f"{rank}\t{dist:.4f}\t{path}")
        if sheet is not None:
            for path, reason in similar_sheet(query, results, sheet):
                click.echo(f"sheet: {reason if reason.startswith(path) else f'{path}: {reason}'}", err=True)
    except AecError as exc:
        raise _fail(exc) from None
