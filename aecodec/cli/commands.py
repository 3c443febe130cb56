"""The file commands (compress, decompress, info, models) and bench and train: click commands
that parse arguments and call the API. Nothing heavy is imported until a command runs, so
``--help``, ``info`` and ``models`` start without torch."""

from __future__ import annotations

import functools
import io
import math
import os
import sys
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, NoReturn, Sequence

from typing import TYPE_CHECKING

import click
from tqdm import tqdm

import aecodec
from aecodec import allocator
from aecodec.atomic import write_atomic
from aecodec.cli.io import STDIO, binary_stream, check_output, read_bytes
from aecodec.defaults import DEFAULT_EFFORT, DEFAULT_MODEL, DEFAULT_QUALITY, EFFORT_MAX, EFFORT_MIN, MODEL_CHOICE_EFFORT
from aecodec.errors import AecError, AecInputError, AecModelError, AecOutputError
from aecodec.versions import split_version

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["compress", "decompress", "info", "models", "bench", "train", "plan_outputs", "write_output",
           "format_for", "encode_image", "parse_qualities"]

_STDIN_LABEL = "<stdin>"
_LOSSY_QUALITY = {"JPEG": 95, "WEBP": 95}  # decoded pixels are already lossy: keep them close
# zlib level of a decoded PNG: 3 wrote 20 decoded LFW faces in 10.7 ms each against 29.6 at
# Pillow's default 6, in 5.6 % more bytes (81.1 KB against 76.8; level 1: 8.3 ms, 85.1 KB), and
# the PNG encode was 23 of the 59 ms a face of `aecodec decompress` over a folder
_PNG_LEVEL = 3
#: decompress's default output: ``face.aec`` → ``face.decoded.png``, never the original ``face.png``.
DECODED_TAG = ".decoded"
SCHEDULER_TIMEOUT_S = 20  # --scheduler: how long to try to reach it


def _say_error(src: str | None, exc: BaseException | str) -> None:
    """One line on stderr: ``aecodec: SRC: message`` (SRC once, even if the message already
    starts with it)."""
    label = (_STDIN_LABEL if src == STDIO else src) if src else None
    msg = str(exc) if not isinstance(exc, OSError) or not exc.strerror else exc.strerror
    if label:
        for prefix in (label, "image bytes", "image"):
            if msg.startswith(prefix + ": "):
                msg = msg[len(prefix) + 2:]
                break
    tqdm.write(f"aecodec: {label}: {msg}" if label else f"aecodec: {msg}", file=sys.stderr)


def _friendly(fn: Callable[..., None]) -> Callable[..., None]:
    """Turn an AecError or OSError that escapes a command into one line and exit status 1; a
    reader that closed the pipe (`| head`) ends the command quietly, with status 141."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            return fn(*args, **kwargs)
        except BrokenPipeError:  # `aecodec models | head`: the reader left; stop quietly, as cat does
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
            sys.exit(141)
        except (AecError, OSError) as exc:
            _say_error(getattr(exc, "filename", None), exc)
            sys.exit(1)
    return wrapper


def _read_input(src: str) -> bytes:
    """The bytes of a path or of stdin, with a clear AecInputError for what cannot be read."""
    if src == STDIO:
        return read_bytes(binary_stream("stdin").read, "empty input")
    return read_bytes(Path(src).read_bytes)


def plan_outputs(inputs: Sequence[str], out: str | None, ext: str, tag: str = "") -> list[str]:
    """The output of each input: beside it with the extension swapped for ``tag + ext``
    (``face.aec`` → ``face.decoded.png`` for tag ``.decoded``), or ``out`` (a file, ``-`` or a
    folder, where the name is the stem plus ``ext``). Raises click.UsageError for
    combinations that cannot work."""
    if inputs.count(STDIO) > 1:
        raise click.UsageError("stdin ('-') can be read only once")
    if out is None:  # beside the input, extension swapped ("/" and "." have no name to swap)
        return [s if s == STDIO else str(Path(s).with_suffix(tag + ext)) if Path(s).name else s + tag + ext
                for s in inputs]
    if out != STDIO and (out.endswith(("/", os.sep)) or Path(out).is_dir()):
        folder = Path(out)
        return [str(folder / (("stdin" if s == STDIO else Path(s).stem or "image") + ext)) for s in inputs]
    if len(inputs) > 1:
        raise click.UsageError("with several inputs, -o must be a folder (an existing one, or a "
                               "path ending in '/')")
    return [out]


def write_output(out: str, data: bytes) -> None:
    """Write via a temporary file in the same folder and ``os.replace``, so that no reader ever
    sees a half-written output and a failure leaves nothing behind."""
    if out == STDIO:
        binary_stream("stdout").write(data)
        return
    try:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        write_atomic(out, data)
    except OSError as exc:  # named as the output's fault, not the input's
        raise AecOutputError(f"output {out}: cannot write ({exc.strerror or exc})") from None


@dataclass
class _Job:
    src: str
    out: str
    data: bytes | None = None  # stdin's bytes, read once
    detail: str = ""  # what decompress wrote (size, mode, format)
    notes: list[str] = field(default_factory=list)

    def name(self) -> str:
        return "<stdout>" if self.out == STDIO else self.out


def _run(inputs: Sequence[str], out: str | None, ext: str, force: bool, desc: str,
         convert: Callable[[list[_Job]], Iterable[bytes | AecError]],
         report: Callable[[_Job, bytes], str] | None, tag: str = "") -> NoReturn:
    """The loop behind compress and decompress: plan and check every output, convert the inputs
    as one stream (the codec reads, batches and packs them in windows, one ahead of the other,
    so memory stays bounded), write each result, report each failure in one line and go on."""
    jobs, failed, claimed = [], 0, set()  # type: ignore[var-annotated]
    for src, dst in zip(inputs, plan_outputs(inputs, out, ext, tag)):
        try:
            check_output(dst, src, force, claimed)
            jobs.append(_Job(src, dst, _read_input(src) if src == STDIO else None))
        except AecError as exc:
            _say_error(src, exc)
            failed += 1
    with tqdm(total=len(inputs), desc=desc, unit="file", file=sys.stderr, dynamic_ncols=True,
              disable=len(inputs) < 2 or not sys.stderr.isatty()) as bar:  # a bar only for a person
        bar.update(failed)
        results = iter(convert(jobs) if jobs else ())  # nothing to convert: no model is loaded
        try:
            for job, result in zip(jobs, results):
                try:
                    if isinstance(result, AecError):
                        raise result
                    write_output(job.out, result)
                    if report is not None:
                        lines = [report(job, result)] + [f"  note: {n}" for n in job.notes]
                        click.echo("\n".join(lines), err=job.out == STDIO)
                except (AecError, OSError) as exc:
                    _say_error(job.src, exc)
                    failed += 1
                bar.update(1)
        finally:
            getattr(results, "close", lambda: None)()  # a generator's threads stop with it
    sys.exit(1 if failed else 0)


def _compress_report(job: _Job, data: bytes) -> str:
    """Output name, bytes, bits per pixel of the real file and PSNR of its decoding."""
    import numpy as np
    from skimage.metrics import peak_signal_noise_ratio

    from aecodec.images import load_image
    prep = load_image(job.data if job.data is not None else job.src)  # type: ignore[arg-type]
    job.notes = prep.notes
    h = aecodec.info(data)
    decoded = np.asarray(aecodec.decompress(data).convert("RGB"))
    psnr = math.inf if np.array_equal(decoded, prep.rgb) else \
        float(peak_signal_noise_ratio(prep.rgb, decoded, data_range=255))
    return f"{job.name()}: {len(data)} bytes, {h.width}x{h.height} {h.mode}, " \
           f"{8.0 * len(data) / (h.width * h.height):.4f} bpp, PSNR {psnr:.2f} dB, model {h.model}"


@click.command()
@click.argument("images", nargs=-1, required=True, metavar="IMAGE...")
@click.option("-o", "--output", "out", metavar="OUT", help="Output file, '-' for stdout, or a folder "
              "(existing, or ending in '/') for several inputs. Default: IMAGE with .aec.")
@click.option("-q", "--quality", type=click.FloatRange(1, 100), default=DEFAULT_QUALITY, show_default=True,
              help="1 (smallest) to 100 (best).")
@click.option("-m", "--model", default=None, help=f"Installed model (see `aecodec models`); default {DEFAULT_MODEL}, "
              f"and at effort {MODEL_CHOICE_EFFORT}+ the better of the general models per image.")
@click.option("-e", "--effort", type=click.IntRange(EFFORT_MIN, EFFORT_MAX), default=DEFAULT_EFFORT, show_default=True,
              help="Encoder search, 1 (fast) to 9 (smallest files, seconds per image); the decoder is the same.")
@click.option("--denoise", is_flag=True, help="Clean noise while compressing: noisy images (estimated noise "
              "sigma >= 0.04) go to the model's denoising twin (conv-photos -> conv-photos-denoise), clean ones "
              "to the model itself. -m with the twin's name uses the twin for every image.")
@click.option("-f", "--force", is_flag=True, help="Overwrite existing outputs.")
@click.option("-v", "--verbose", is_flag=True, help="Print bytes, bits per pixel, PSNR and the model used, per file.")
@click.option("--scheduler", metavar="ADDRESS", help="Run on a running Dask cluster (tcp://HOST:8786): the "
              "workers read the inputs and write into -o, a folder or fsspec URL they all reach. Needs aecodec[dask].")
@click.option("--device", default="cpu", show_default=True, metavar="DEVICE",
              help="Where the network runs: cpu, cuda, cuda:N or auto (a CUDA GPU if torch sees one).")
@_friendly
def compress(images: tuple[str, ...], out: str | None, quality: float, model: str | None, effort: int,
             denoise: bool, force: bool, verbose: bool, scheduler: str | None, device: str) -> None:
    """Compress images (PNG, JPEG, ...; '-' reads stdin) to .aec files."""
    device = _device_option(device)
    if scheduler is not None:
        if denoise:
            raise click.UsageError("--denoise is not available with --scheduler")
        _run_cluster("compress", scheduler, images, out, force, verbose, quality=quality, model=model, effort=effort,
                     device=device)
    from aecodec.denoising import denoising_codec
    allocator.tune()  # this process's tensors come and go by the window (aecodec.allocator)
    if denoise and device != "cpu":
        raise click.UsageError("--denoise runs on the CPU only")
    codec = denoising_codec(model or DEFAULT_MODEL, quality, effort) if denoise \
        else aecodec.Codec(model=model, quality=quality, effort=effort, device=device)
    _run(images, out, ".aec", force, "compress",
         lambda chunk: codec.compress_many([j.data if j.data is not None else j.src for j in chunk]),  # type: ignore
         _compress_report if verbose else None)


def _run_cluster(kind: str, address: str, inputs: Sequence[str], out: str | None, force: bool, verbose: bool,
                 **options: Any) -> NoReturn:
    """compress / decompress ``--scheduler``: the files mapped over a Dask cluster
    (aecodec.distributed); each failure one line, as without a cluster, then exit 1."""
    if out is None or out == STDIO:
        raise click.UsageError("--scheduler needs -o FOLDER (or a URL) that every worker can write to")
    if STDIO in inputs:
        raise click.UsageError("--scheduler reads files; stdin ('-') stays on this machine")
    if "://" not in out and Path(out).is_file():
        raise click.UsageError(f"with --scheduler, -o is a folder the outputs go into; {out} is a file")
    try:
        from distributed import Client

        from aecodec import distributed as cluster
    except ImportError:
        raise AecInputError("--scheduler needs Dask: pip install 'aecodec[dask]'") from None
    try:
        client = Client(address, timeout=SCHEDULER_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as exc:
        raise AecInputError(f"cannot reach the Dask scheduler at {address} ({exc})") from None
    with client:
        run = cluster.compress if kind == "compress" else cluster.decompress
        results = run(client, list(inputs), out, force=force, progress=sys.stderr.isatty() and len(inputs) > 1,
                      **options)
    failed = 0
    for r in results:
        if r.ok:
            if verbose:
                click.echo(f"{r.out}: {r.nbytes} bytes" + (f", {r.detail}" if r.detail else ""))
        else:
            _say_error(r.src, r.error or "failed")
            failed += 1
    sys.exit(1 if failed else 0)


def format_for(path: str) -> str:
    """The Pillow format an output path's extension names (PNG for stdout)."""
    from PIL import Image

    ext = ".png" if path == STDIO else Path(path).suffix.lower()
    if ext == ".aec":
        raise AecOutputError("decompress writes images, not .aec files (use compress for those)")
    fmt = Image.registered_extensions().get(ext)
    if fmt is None or fmt not in Image.SAVE:
        what = f"extension {ext}" if ext else "a name without an extension"
        raise AecOutputError(f"cannot tell which image format to write from {what} (use .png, .jpg, .webp, ...)")
    return fmt


def encode_image(im: Image.Image, fmt: str, notes: list[str]) -> bytes:
    """The bytes of ``im`` in Pillow format ``fmt``; alpha is composited onto white for JPEG."""
    from PIL import Image

    if fmt == "JPEG" and im.mode in ("RGBA", "LA"):
        base = Image.new(im.mode[:-1], im.size, 255 if im.mode == "LA" else (255, 255, 255))
        base.paste(im.convert(base.mode), mask=im.getchannel("A"))
        im = base
        notes.append("alpha flattened onto white: JPEG has no alpha channel")
    buf = io.BytesIO()
    try:
        options = {"quality": _LOSSY_QUALITY[fmt]} if fmt in _LOSSY_QUALITY else \
            {"compress_level": _PNG_LEVEL} if fmt == "PNG" else {}
        im.save(buf, format=fmt, **options)
    except (OSError, KeyError, ValueError) as exc:
        raise AecOutputError(f"cannot write a {im.mode} image as {fmt} ({exc})") from None
    return buf.getvalue()


def _device_option(device: str) -> str:
    """--device, checked without torch: a malformed value is a usage error."""
    from aecodec.devices import check_device
    try:
        return check_device(device)
    except AecError as exc:
        raise click.BadParameter(str(exc), param_hint="--device") from None


# decompress decodes files of up to this many pixels several at a time on the CPU (as many as
# torch has threads, each file on one): 96 LFW faces went from 40-43 to 27-30 ms a file on two
# cores. A larger file is decoded alone, on every thread, so the peak stays one image's (a
# 24-megapixel decode peaks near 1.6 GB, benchmarks/tiles.md).
PARALLEL_DECODE_MAX_PIXELS = 1 << 22


def _decompress_all(jobs: list[_Job], device: str = "cpu") -> Iterator[bytes | AecError]:
    """Each job's output bytes, or its error, in order (``PARALLEL_DECODE_MAX_PIXELS``). The
    decoded pixels are those of a one-thread decode: within ±1 of any other thread count's."""
    import torch

    workers = torch.get_num_threads()
    if device != "cpu" or workers < 2 or len(jobs) < 2:
        yield from (_decompress_one(job, device) for job in jobs)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="aecodec-decode", initializer=torch.set_num_threads,
                            initargs=(1,)) as pool:
        flight: deque[Future] = deque()
        for job in jobs:
            if _pixels(job) > PARALLEL_DECODE_MAX_PIXELS:
                while flight:
                    yield flight.popleft().result()
                yield _decompress_one(job, device)
                continue
            flight.append(pool.submit(_decompress_one, job, device))
            if len(flight) > workers:  # one waiting beside those decoding
                yield flight.popleft().result()
        while flight:
            yield flight.popleft().result()


def _pixels(job: _Job) -> int:
    """The pixels ``job``'s file declares, its bytes read into the job; 0 where it cannot be read
    or parsed (its decode reports why)."""
    from aecodec.container import read
    try:
        if job.data is None:
            job.data = _read_input(job.src)
        header = read(job.data).header
    except AecError:
        return 0
    return header.width * header.height


def _decompress_one(job: _Job, device: str = "cpu") -> bytes | AecError:
    try:
        fmt = format_for(job.out)
        data = job.data if job.data is not None else _read_input(job.src)
        if job.src != STDIO:
            job.data = None  # (read ahead by _pixels: not held for the rest of the run)
        im = aecodec.decompress(data, device=device)
        data = encode_image(im, fmt, job.notes)
    except AecError as exc:
        return exc
    job.detail = f"{im.width}x{im.height} {im.mode} as {fmt}"
    return data


@click.command()
@click.argument("files", nargs=-1, required=True, metavar="FILE.aec...")
@click.option("-o", "--output", "out", metavar="OUT", help="Output image (its extension picks the "
              "format), '-' for PNG on stdout, or a folder (FOLDER/NAME.png). Default: NAME.decoded.png beside "
              "FILE.aec, so that the image it was made from is never overwritten.")
@click.option("-f", "--force", is_flag=True, help="Overwrite existing outputs.")
@click.option("-v", "--verbose", is_flag=True, help="Print each output's size, mode and format.")
@click.option("--scheduler", metavar="ADDRESS", help="Run on a running Dask cluster (tcp://HOST:8786): the "
              "workers read the inputs and write into -o, a folder or fsspec URL they all reach. Needs aecodec[dask].")
@click.option("--device", default="cpu", show_default=True, metavar="DEVICE",
              help="Where the network runs: cpu, cuda, cuda:N or auto (a CUDA GPU if torch sees one).")
@_friendly
def decompress(files: tuple[str, ...], out: str | None, force: bool, verbose: bool, scheduler: str | None,
               device: str) -> None:
    """Decode .aec files ('-' reads stdin) to PNG, or to the format of -o's extension."""
    device = _device_option(device)
    if scheduler is not None:
        _run_cluster("decompress", scheduler, files, out, force, verbose, device=device)
    if device != "cpu":
        from aecodec.devices import resolve_device
        resolve_device(device)  # a missing GPU is one line, not one per file
    allocator.tune()
    _run(files, out, ".png", force, "decompress", functools.partial(_decompress_all, device=device),
         (lambda job, data: f"{job.name()}: {job.detail}, {len(data)} bytes") if verbose else None,
         tag=DECODED_TAG)


@click.command()
@click.argument("files", nargs=-1, required=True, metavar="FILE.aec...")
@_friendly
def info(files: tuple[str, ...]) -> None:
    """Print the header of .aec files (model, size, mode, quality, ...), after checking each
    file as decompress does (checksum, sizes, model and weights, payload) short of decoding."""
    from aecodec.pack import METHODS
    from aecodec.verify import verify
    failed = shown = 0
    for src in files:
        try:
            data = _read_input(src)
            f = verify(data)  # a truncated or corrupt file is an error, not a header
            h = f.header
        except AecError as exc:
            _say_error(src, exc)
            failed += 1
            continue
        rows = [("model", f"{h.model} (v{split_version(h.model)[1]})"), ("weights", h.weights_hash.hex()), ("size", f"{h.width}x{h.height}"),
                ("mode", h.mode), ("quality", f"{h.quality:g}"), ("latent shape", "x".join(map(str, h.latent_shape))),
                ("packing", f"{METHODS.get(h.packing, 'unknown')} ({h.packing})"), ("bytes", len(data)),
                ("bpp", f"{8.0 * len(data) / (h.width * h.height):.4f}"), ("format", f"version {f.version}")]
        label = _STDIN_LABEL if src == STDIO else src
        click.echo(("\n" if shown else "") + label + "".join(f"\n  {k + ':':14}{v}" for k, v in rows))
        shown += 1
    sys.exit(1 if failed else 0)


def _card_lines(card: dict[str, Any]) -> list[str]:
    """The facts of a weight card worth showing: training effort, hardware, results."""
    out = []
    for key in ("steps", "wall_s", "hardware", "world_size", "fit", "training_images", "final_train", "results"):
        v = card.get(key)
        if isinstance(v, dict):
            v = ", ".join(f"{k}={x:.4g}" if isinstance(x, float) else f"{k}={x}" for k, x in v.items())
        elif key == "wall_s" and isinstance(v, (int, float)):
            key, v = "wall time", f"{v:.0f} s ({v / 60:.1f} min)"
        if v is not None:
            out.append(f"{key.replace('_', ' ')}: {v}")
    return out


@click.command()
@click.option("-v", "--verbose", is_flag=True, help="Add facts from each model's card (training, results).")
@_friendly
def models(verbose: bool) -> None:
    """List the installed models, every version of each.

    A family name (or its alias, e.g. `photos`, `faces`) means its newest version, marked `*`;
    older versions stay installed so that every file they wrote still decodes.
    """
    from aecodec.catalog import families, shipped_dir
    from aecodec.versions import ALIASES
    if not aecodec.list_models():
        raise AecModelError(f"no models are installed (looked in {shipped_dir()})")
    failed = 0
    alias_of = {fam: a for a, fam in ALIASES.items()}
    click.echo(f"  {'model':24} {'ver':>3}  {'domain':8} {'size':12} {'weights':>9}  description")
    for family, versions in families().items():
        for version, name in versions:
            try:
                mi = aecodec.model_info(name, exact=True)
            except AecError as exc:
                _say_error(name, exc)
                failed += 1
                continue
            size = "any size" if mi["fixed_size"] is None else "fixed {}x{}".format(*mi["fixed_size"])
            mb = (shipped_dir() / f"{name}.pt").stat().st_size / 1e6
            mark = "*" if mi["newest"] else " "
            click.echo(f"{mark} {name:24} {f'v{version}':>3}  {mi['domain']:8} {size:12} {mb:6.2f} MB  {mi['description']}")
            if verbose:
                for line in _card_lines(mi["card"]):
                    click.echo(f"{'':28}{line}")
        if len(versions) > 1 or family in alias_of:
            also = f" (or -m {alias_of[family]})" if family in alias_of else ""
            click.echo(f"{'':28}-m {family}{also} means {versions[-1][1]}")
    sys.exit(1 if failed else 0)


def parse_qualities(specs: Sequence[str]) -> dict[str, list[float]]:
    """``10,30,50`` (every aecodec model) or ``jpeg=20,50,80`` (one codec), repeatable."""
    out: dict[str, list[float]] = {}
    for spec in specs:
        key, _, values = spec.rpartition("=")
        try:
            out[key or "aec"] = [float(v) for v in values.split(",") if v.strip()]
        except ValueError:
            raise click.BadParameter(f"{spec!r}: want 10,30,50 or jpeg=20,50,80", param_hint="--qualities") from None
    return out


def _bd_text(result: Any) -> list[str]:
    """The BD-rate table as plain text: a row per codec, against the anchor, on PSNR and MS-SSIM."""
    def num(x: float | None, fmt: str) -> str:
        return "-" if x is None or not math.isfinite(x) else format(x, fmt)
    rows = {(b.codec, b.metric): b for b in result.bd}
    lines = [f"BD-rate against {result.setup.get('anchor', 'jpeg')} (negative: fewer bits for the same quality)",
             f"{'codec':24}{'BD-rate PSNR':>14}{'BD-PSNR':>10}{'BD-rate MS-SSIM':>17}{'images':>8}"]
    for c in dict.fromkeys(b.codec for b in result.bd):
        p, m = rows.get((c, "psnr")), rows.get((c, "msssim"))
        lines.append(f"{c:24}{num(p and p.bd_rate, '+.1f') + ' %':>14}{num(p and p.bd_dist, '+.2f'):>10}"
                     f"{num(m and m.bd_rate, '+.1f') + ' %':>17}{(p.n_images if p else 0):>8}")
    return lines


@click.command()
@click.argument("inputs", nargs=-1, required=True, metavar="IMAGE_OR_FOLDER...")
@click.option("-c", "--codecs", help="Comma-separated codecs: jpeg, webp, avif, jpeg2000, heif, jxl, aec:<model>. "
              "Default: all that are installed and take every image, with the plain (not denoising) models.")
@click.option("-o", "--output", "out", default="bench-report", show_default=True, metavar="REPORT_DIR",
              help="Folder for report.md, plots and results.json.")
@click.option("--qualities", multiple=True, metavar="[CODEC=]Q,Q,...",
              help="Quality sweep: for every aecodec model, or for CODEC=. Repeatable.")
@click.option("--no-msssim", is_flag=True, help="Skip MS-SSIM (the slowest metric).")
@_friendly
def bench(inputs: tuple[str, ...], codecs: str | None, out: str, qualities: tuple[str, ...],
          no_msssim: bool) -> None:
    """Measure rate, PSNR, MS-SSIM and speed against JPEG, WebP, AVIF, JPEG 2000, HEIF and JPEG XL.

    It first says roughly how long the run will take, then reports progress on stderr: a bar
    at a terminal, a line per codec otherwise. HEIF and JPEG XL need the `codecs` extra
    (pip install "aecodec[codecs]"); without it they are named as skipped.
    """
    from aecodec.bench import run_bench
    from aecodec.bench.progress import progress_mode
    names = [c.strip() for c in codecs.split(",") if c.strip()] if codecs else None
    result = run_bench(list(inputs), codecs=names, out_dir=out, qualities=parse_qualities(qualities) or None,
                       progress=progress_mode(sys.stderr), msssim=not no_msssim)
    click.echo("\n".join(_bd_text(result)))
    for s in result.skipped:
        if s.kind == "codec":
            click.echo(f"skipped {s.name}: {s.reason}")
    others = [s for s in result.skipped if s.kind != "codec"]
    if others:
        click.echo(f"{len(others)} other item(s) skipped: see the report")
    click.echo(f"report: {Path(out) / 'report.md'}")


@click.command()
@click.option("--config", "config", default=DEFAULT_MODEL, show_default=True, metavar="FILE.json|MODEL",
              help="A training config (JSON; the repository's configs/ has the shipped ones), or an installed "
              "model's name: the config its weight card records, without its data (give --images or --lfw).")
@click.option("--images", multiple=True, metavar="PATH", help="Image files or folders to train on (photos at "
              "least 256 px a side; repeatable). With --lfw, replaces the config's data.")
@click.option("--lfw", metavar="LFW.TGZ", help="An LFW archive (lfw.tgz layout: lfw/<Person>/<Person>_NNNN.jpg); "
              "its train people are used. With --images, replaces the config's data.")
@click.option("-o", "--out", type=click.Path(dir_okay=False), help="Weights file to write. Default: the JSON "
              "config's \"out\"; MODEL.pt here for a model's name (and MODEL.ckpt for checkpoints).")
@click.option("-f", "--force", is_flag=True, help="Overwrite an existing weights file.")
@click.option("--resume", is_flag=True, help="Continue from the config's checkpoint.")
@click.option("--steps", type=click.IntRange(min=1), help="Override the number of steps.")
@click.option("--time-budget", type=click.FloatRange(min=0, min_open=True), metavar="S",
              help="Stop after S seconds of training.")
@click.option("--device", help="torch device: cpu, cuda, cuda:1, auto.")
@_friendly
def train(config: str, images: tuple[str, ...], lfw: str | None, out: str | None, force: bool, resume: bool,
          steps: int | None, time_budget: float | None, device: str | None) -> None:
    """Train a model on your images, from a config file or from an installed model's config.

    \b
      aecodec train --images my_photos/ -o my-photos.pt --time-budget 3600
      aecodec train --config conv-faces --lfw lfw.tgz -o my-faces.pt --steps 20000
      aecodec train --config configs/conv-faces.json --resume      (in a clone)

    The weights file is never overwritten without -f (a shipped one included); to compress with
    it, copy it into the installed weights folder under a new name (see the README).
    """
    from aecodec.cli.io import check_folder
    from aecodec.train import TrainConfig, train as run_training
    given: dict[str, Any] = {k: v for k, v in {"steps": steps, "time_budget_s": time_budget, "device": device,
                                               "out": out}.items() if v is not None}
    if images or lfw:
        given.update(folders=list(images), lfw=lfw)
    if Path(config).is_file() or config.endswith(".json"):
        cfg = TrainConfig.from_file(config, **given)
    else:
        if out is not None:
            given["checkpoint"] = str(Path(out).with_suffix(".ckpt"))
        cfg = TrainConfig.from_installed(config, **given)
    cfg.check_data()
    if cfg.out:
        if Path(cfg.out).exists() and not force:
            raise AecOutputError(f"output {cfg.out} exists (use -f to overwrite it)")
        check_folder(cfg.out)
    result = run_training(cfg, resume=resume, progress=sys.stderr.isatty())
    click.echo(f"trained {result.steps} steps in {result.wall_s:.0f} s")
    click.echo(f"weights: {cfg.out}" if cfg.out else f"checkpoint: {cfg.checkpoint} (no --out: no weight file)")
