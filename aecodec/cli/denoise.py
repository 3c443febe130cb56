"""The ``aecodec denoise`` command: compress and decode noisy images in one step, keeping the clean result."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, Sequence

import click
from tqdm import tqdm

from aecodec.cli.commands import _say_error, write_output
from aecodec.cli.io import check_output
from aecodec.container import read_header
from aecodec.defaults import DEFAULT_MODEL, DEFAULT_QUALITY
from aecodec.errors import AecError, AecOutputError

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["denoise", "denoised_path", "plan_outputs", "image_format_for"]

#: Added to an input's stem for its output name: ``x.jpg`` → ``x.denoised.png``.
OUTPUT_TAG = ".denoised"
DEFAULT_SUFFIX = ".png"
_SAVE_OPTIONS: dict[str, dict[str, object]] = {"JPEG": {"quality": 95}, "WEBP": {"quality": 95}}


def denoised_path(src: Path, folder: Path | None = None) -> Path:
    """``<stem>.denoised.png``, beside ``src`` or in ``folder``."""
    name = src.stem + OUTPUT_TAG + DEFAULT_SUFFIX
    return src.with_name(name) if folder is None else folder / name


def _is_folder(out: str) -> bool:
    return out.endswith(("/", os.sep)) or Path(out).is_dir()


def plan_outputs(inputs: Sequence[str], out: str | None) -> list[Path]:
    """The output of each input: beside it by default, in ``out`` if it is a folder (an existing
    one, or a path ending in '/'), else ``out`` itself (one input only)."""
    if out is None:
        return [denoised_path(Path(s)) for s in inputs]
    if _is_folder(out):
        return [denoised_path(Path(s), Path(out)) for s in inputs]
    if len(inputs) > 1:
        raise AecOutputError("with several inputs, -o must be a folder (an existing one, or a path ending in '/')")
    return [Path(out)]


def image_format_for(path: Path) -> str:
    """Pillow's format name for an output path, from its extension; AecOutputError if unknown."""
    from PIL import Image

    suffix = path.suffix.lower()
    if suffix == ".aec":
        raise AecOutputError(f"output {path}: denoise writes an image; for a .aec file use "
                             f"`aecodec compress --denoise`")
    fmt = Image.registered_extensions().get(suffix)
    if fmt is None or fmt not in Image.SAVE:
        raise AecOutputError(f"output {path}: no image format Pillow can write has the extension "
                             f"{suffix or '(none)'} (use .png, .jpg, .webp, .tif, ...)")
    return fmt


def _check_output(dst: Path, src: str, force: bool, claimed: set[str]) -> None:
    check_output(str(dst), src, force, claimed)


def _encode(image: Image.Image, fmt: str, dst: Path) -> bytes:
    buf = io.BytesIO()
    try:
        image.save(buf, format=fmt, **_SAVE_OPTIONS.get(fmt, {}))
    except (OSError, ValueError, KeyError) as exc:  # e.g. RGBA as JPEG
        raise AecOutputError(f"output {dst}: cannot write a {image.mode} image as {fmt} ({exc})") from None
    return buf.getvalue()


@click.command(name="denoise")
@click.argument("images", nargs=-1, required=True, metavar="IMAGE...")
@click.option("-o", "--output", "out", metavar="OUT", default=None,
              help="Output image (its extension picks the format), or a folder (existing, or ending in '/') "
                   "for several inputs. Default: IMAGE.denoised.png beside each input.")
@click.option("-q", "--quality", type=click.FloatRange(1, 100), default=DEFAULT_QUALITY, show_default=True,
              help="1 (smallest) to 100 (best): the quality of the intermediate .aec code.")
@click.option("-m", "--model", default=DEFAULT_MODEL, show_default=True,
              help="Model whose denoising twin cleans noisy images (conv-photos → conv-photos-denoise, "
                   "conv-faces → conv-faces-denoise); images without noise (estimated sigma < 0.04) go "
                   "through the model itself. Name the twin to use it for every image.")
@click.option("-f", "--force", is_flag=True, help="Overwrite existing outputs.")
@click.option("-v", "--verbose", is_flag=True, help="Print each output and the size of its .aec code.")
def denoise(images: tuple[str, ...], out: str | None, quality: float, model: str, force: bool,
            verbose: bool) -> NoReturn:
    """Clean noisy images by compressing and decoding them with a denoising model.

    Meant for sensor-like noise (up to about 20% of the pixel range). Images with no
    measurable noise go through the plain model instead, since the denoising model smooths
    fine detail. The result is what `aecodec compress --denoise` then `aecodec decompress`
    would give.
    """
    if out is not None and len(images) > 1 and not _is_folder(out):  # a usage error, as for compress
        raise click.UsageError("with several inputs, -o must be a folder (an existing one, or a path ending in '/')")
    try:
        from aecodec.codec import check_quality
        from aecodec.denoising import denoising_codec
        check_quality(quality)
        codec = denoising_codec(model, quality)
        outputs = plan_outputs(images, out)
    except AecError as exc:
        _say_error(None, exc)
        sys.exit(1)
    failed = 0
    claimed: set[str] = set()
    with tqdm(total=len(images), desc="denoise", unit="file", file=sys.stderr, dynamic_ncols=True,
              disable=len(images) < 2 or not sys.stderr.isatty()) as bar:  # a bar only for a person
        for src, dst in zip(images, outputs):
            try:
                fmt = image_format_for(dst)
                _check_output(dst, src, force, claimed)
                data = codec.compress(src)
                clean = codec.decompress(data)
                write_output(str(dst), _encode(clean, fmt, dst))
                if verbose:
                    click.echo(f"{dst}: {clean.width}x{clean.height} {clean.mode}, {read_header(data).model} quality "
                               f"{codec.quality:g}, .aec code {len(data)} bytes, "
                               f"{8.0 * len(data) / (clean.width * clean.height):.4f} bpp")
            except (AecError, OSError) as exc:
                _say_error(src, exc)
                failed += 1
            bar.update(1)
    if failed and len(images) > 1:
        tqdm.write(f"aecodec: {failed} of {len(images)} images failed", file=sys.stderr)
    sys.exit(1 if failed else 0)
