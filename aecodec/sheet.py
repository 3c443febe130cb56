"""Contact sheets: a query and its nearest neighbours in one labelled PNG, like the study's figures."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from PIL import Image, ImageDraw, ImageFont, ImageOps

from aecodec.atomic import write_atomic
from aecodec.container import looks_like_aec
from aecodec.errors import AecError, AecInputError, AecOutputError

__all__ = ["THUMB", "load_thumbnail", "contact_sheet", "similar_sheet"]

THUMB = 128  # side of each tile, in pixels
_PAD = 6
_LABEL_H = 30
_BG = (255, 255, 255)
_QUERY_FRAME = (200, 40, 40)


def load_thumbnail(path: str | Path, size: int = THUMB) -> Image.Image:
    """An RGB thumbnail that fits ``size``×``size``: a `.aec` file is decoded, an image read."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AecInputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if looks_like_aec(data):
        from aecodec.codec import decode_file  # torch is only needed for `.aec` tiles
        im = decode_file(data)
    else:
        from aecodec.images import load_image, to_pil
        prep = load_image(path)
        im = to_pil(prep.rgb, "RGB", None)
    return ImageOps.contain(im.convert("RGB"), (size, size), Image.Resampling.LANCZOS)


def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=11)
    except (TypeError, OSError):  # Pillow built without FreeType: the bitmap font
        return ImageFont.load_default()


def _fit(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont | ImageFont.FreeTypeFont,
         width: int) -> str:
    """``text`` cut from the left (file names differ at their ends) to fit ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while len(text) > 1 and draw.textlength("…" + text, font=font) > width:
        text = text[1:]
    return "…" + text


def contact_sheet(tiles: Sequence[tuple[Image.Image | None, str, str]], size: int = THUMB,
                  columns: int | None = None) -> Image.Image:
    """One sheet of ``(image, line1, line2)`` tiles in rows of ``columns`` (default: all in one
    row, at most 6); the first tile is framed as the query. A None image is drawn as a grey box."""
    n = len(tiles)
    if n == 0:
        raise AecInputError("a contact sheet needs at least one image")
    cols = columns or min(n, 6)
    rows = -(-n // cols)
    cell_w, cell_h = size + 2 * _PAD, size + 2 * _PAD + _LABEL_H
    sheet = Image.new("RGB", (cols * cell_w, rows * cell_h), _BG)
    draw = ImageDraw.Draw(sheet)
    font = _font()
    for i, (im, line1, line2) in enumerate(tiles):
        x0, y0 = (i % cols) * cell_w + _PAD, (i // cols) * cell_h + _PAD
        if im is None:
            draw.rectangle([x0, y0, x0 + size - 1, y0 + size - 1], fill=(200, 200, 200))
        else:
            sheet.paste(im, (x0 + (size - im.width) // 2, y0 + (size - im.height) // 2))
        if i == 0:
            draw.rectangle([x0 - 3, y0 - 3, x0 + size + 2, y0 + size + 2], outline=_QUERY_FRAME, width=2)
        for j, text in enumerate((line1, line2)):
            draw.text((x0, y0 + size + 3 + 13 * j), _fit(draw, text, font, size), fill=(0, 0, 0), font=font)
    return sheet


def similar_sheet(query: str | Path, neighbours: Sequence[tuple[str, float]], out: str | Path,
                  size: int = THUMB, overwrite: bool = True) -> list[tuple[str, str]]:
    """Write a PNG of the query and its neighbours (name and distance under each), atomically.

    Returns the (path, reason) of neighbours that could not be read; they are drawn as grey
    boxes so the sheet still shows every rank.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise AecOutputError(f"{out} exists; use -f/--force to overwrite it")
    missing: list[tuple[str, str]] = []
    tiles: list[tuple[Image.Image | None, str, str]] = [(load_thumbnail(query, size), "query", Path(query).name)]
    for rank, (path, dist) in enumerate(neighbours, 1):
        try:
            im: Image.Image | None = load_thumbnail(path, size)
        except AecError as exc:
            im = None
            missing.append((path, str(exc)))
        tiles.append((im, f"#{rank}  d={dist:.3f}", Path(path).name))
    sheet = contact_sheet(tiles, size, columns=min(len(tiles), 6))
    try:
        write_atomic(out, lambda f: sheet.save(f, format="PNG"))
    except OSError as exc:
        raise AecOutputError(f"{out}: cannot write ({exc.strerror or exc})") from None
    return missing
