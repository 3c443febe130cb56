"""Collections on a Dask cluster: ``compress`` and ``decompress`` map files over a running
``distributed.Client``.

::

    from distributed import Client
    import aecodec.distributed

    with Client("tcp://scheduler:8786") as client:
        results = aecodec.distributed.compress(client, paths, "s3://bucket/aec/", quality=60)
        failed = [r for r in results if not r.ok]

The files go to the workers in chunks of ``chunk``; each worker process loads a model once (the
weights cache of ``aecodec.weights``) and keeps it for every later chunk, runs equal-size images
through the network together, and writes each output itself, atomically (a temporary file and a
rename on a filesystem; one PUT on an object store, which never shows half an object). Each file
ends as a ``FileResult``: written, or one line saying what is wrong with it, exactly as the local
command says it; one bad file never stops the others. The client checks every output first (not
an input, not twice in the run, not existing unless ``force``) and draws one progress bar.

Paths are local paths (every worker must see them at the same place: a shared filesystem) or
fsspec URLs (``s3://``, ``gs://``, ``file://``, ...; the backend's package must be installed on
the workers). Install with ``pip install "aecodec[dask]"``.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from aecodec.atomic import write_atomic
from aecodec.defaults import DEFAULT_EFFORT, DEFAULT_QUALITY
from aecodec.errors import AecError, AecInputError, AecOutputError

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["FileResult", "compress", "decompress", "output_paths", "DECODED_EXT"]

DECODED_EXT = ".png"


@dataclass(frozen=True)
class FileResult:
    src: str
    out: str
    error: str | None = None  # what is wrong, one line, as the local command says it
    nbytes: int = 0  # bytes written
    detail: str = ""  # decompress: "WxH MODE as FORMAT"

    @property
    def ok(self) -> bool:
        return self.error is None


def _is_url(path: str) -> bool:
    return "://" in path


def _stem(src: str) -> str:
    name = posixpath.basename(src.rstrip("/")) if _is_url(src) else Path(src).name
    return Path(name).stem or "image"


def output_paths(sources: Sequence[str], out_dir: str, ext: str) -> list[str]:
    """Each source's output in ``out_dir``: its stem plus ``ext`` (``a/face.png`` → ``OUT/face.aec``)."""
    if _is_url(out_dir):
        return [out_dir.rstrip("/") + "/" + _stem(s) + ext for s in sources]
    return [str(Path(out_dir) / (_stem(s) + ext)) for s in sources]


def _fs(url: str) -> tuple[Any, str]:
    import fsspec

    return fsspec.core.url_to_fs(url)


def _local_path(path: str) -> str | None:
    """The local path behind ``path`` (a plain path or a ``file://`` URL), or None."""
    if not _is_url(path):
        return path
    from fsspec.implementations.local import LocalFileSystem

    fs, p = _fs(path)
    return p if isinstance(fs, LocalFileSystem) else None


def _exists(path: str) -> bool:
    local = _local_path(path)
    if local is not None:
        return Path(local).exists()
    fs, p = _fs(path)
    return bool(fs.exists(p))


def read_source(src: str) -> bytes:
    """The bytes of a local path or fsspec URL; an AecInputError saying what is wrong, as the
    local command says it (aecodec.cli.io.read_bytes)."""
    from aecodec.cli.io import read_bytes

    local = _local_path(src)
    if local is not None:
        return read_bytes(Path(local).read_bytes)
    try:
        fs, p = _fs(src)
        return read_bytes(lambda: fs.cat_file(p))
    except ValueError as exc:  # a URL fsspec cannot parse
        raise AecInputError(f"cannot read ({exc})") from None


def write_result(out: str, data: bytes, force: bool) -> None:
    """Write ``out`` whole or not at all; refuse an existing one unless ``force``."""
    try:
        if not force and _exists(out):
            raise AecOutputError(f"output {out} exists (use -f to overwrite it)")
        local = _local_path(out)
        if local is not None:
            Path(local).parent.mkdir(parents=True, exist_ok=True)
            write_atomic(local, data)
        else:
            fs, p = _fs(out)
            fs.pipe_file(p, data)
    except OSError as exc:
        raise AecOutputError(f"output {out}: cannot write ({exc.strerror or exc})") from None


# --- on the workers -----------------------------------------------------------------------------

def _compress_chunk(pairs: list[tuple[str, str]], quality: float, model: str | None, effort: int,
                    force: bool, device: str) -> list[FileResult]:
    import aecodec

    codec = aecodec.Codec(model=model, quality=quality, effort=effort, device=device)  # the weights load once per process
    results: dict[int, FileResult] = {}
    readable: list[tuple[int, bytes]] = []
    for i, (src, out) in enumerate(pairs):
        try:
            readable.append((i, read_source(src)))
        except AecError as exc:
            results[i] = FileResult(src, out, str(exc))
    for (i, _), encoded in zip(readable, codec.compress_many([d for _, d in readable])):
        src, out = pairs[i]
        results[i] = _written(src, out, encoded, force)
    return [results[i] for i in range(len(pairs))]


def _decompress_chunk(pairs: list[tuple[str, str]], force: bool, device: str) -> list[FileResult]:
    import aecodec
    from aecodec.cli.commands import encode_image, format_for

    out_list = []
    for src, out in pairs:
        try:
            fmt = format_for(out)
            im = aecodec.decompress(read_source(src), device=device)
            notes: list[str] = []
            data: bytes | AecError = encode_image(im, fmt, notes)
            detail = f"{im.width}x{im.height} {im.mode} as {fmt}"
        except AecError as exc:
            data, detail = exc, ""
        out_list.append(_written(src, out, data, force, detail))
    return out_list


def _written(src: str, out: str, data: bytes | AecError, force: bool, detail: str = "") -> FileResult:
    if isinstance(data, AecError):
        return FileResult(src, out, str(data))
    try:
        write_result(out, data, force)
    except AecError as exc:
        return FileResult(src, out, str(exc))
    return FileResult(src, out, None, len(data), detail)


# --- on the client ------------------------------------------------------------------------------

def compress(client: Client, sources: Sequence[str], out_dir: str, quality: float = DEFAULT_QUALITY,
             model: str | None = None, effort: int = DEFAULT_EFFORT, force: bool = False, chunk: int = 16,
             progress: bool = False, device: str = "cpu") -> list[FileResult]:
    """Compress ``sources`` (paths or URLs) to ``out_dir``/STEM.aec on the cluster; one
    ``FileResult`` per source, in order. Bad options (quality, effort, model) raise at once,
    before anything is sent. ``device`` is where each worker runs the network (``auto``: its GPU
    if it has one)."""
    import aecodec
    from aecodec.codec import check_quality
    from aecodec.devices import check_device
    from aecodec.effort import check_effort

    quality, effort, device = check_quality(quality), check_effort(effort), check_device(device)
    if model is not None:
        aecodec.model_info(model)  # an unknown model is one error, not one per file
    return _map(client, sources, output_paths(sources, out_dir, ".aec"), force, chunk, progress, "compress",
                lambda pairs: (_compress_chunk, pairs, quality, model, effort, force, device))


def decompress(client: Client, sources: Sequence[str], out_dir: str, ext: str = DECODED_EXT,
               force: bool = False, chunk: int = 16, progress: bool = False, device: str = "cpu") -> list[FileResult]:
    """Decode ``.aec`` ``sources`` to ``out_dir``/STEM``ext`` (the extension picks the format)."""
    from aecodec.devices import check_device

    device = check_device(device)
    return _map(client, sources, output_paths(sources, out_dir, ext), force, chunk, progress, "decompress",
                lambda pairs: (_decompress_chunk, pairs, force, device))


def _map(client: Client, sources: Sequence[str], outs: list[str], force: bool, chunk: int, progress: bool,
         desc: str, task: Callable[[list[tuple[str, str]]], tuple[Any, ...]]) -> list[FileResult]:
    from distributed import as_completed
    from tqdm import tqdm

    if chunk < 1:
        raise ValueError("chunk must be at least 1")
    results: dict[int, FileResult] = {}
    todo: list[int] = []
    claimed: set[str] = set()
    for i, (src, out) in enumerate(zip(sources, outs)):
        error = _check_output(src, out, force, claimed)
        if error:
            results[i] = FileResult(src, out, error)
        else:
            todo.append(i)
    futures = {}
    for k in range(0, len(todo), chunk):
        idx = todo[k:k + chunk]
        fn, *args = task([(sources[i], outs[i]) for i in idx])
        futures[client.submit(fn, *args, pure=False)] = idx
    with tqdm(total=len(sources), desc=desc, unit="file", disable=not progress, leave=False) as bar:
        bar.update(len(results))
        for fut in as_completed(futures):
            idx = futures[fut]
            try:
                chunk_results = fut.result()
            except Exception as exc:  # a worker died or the task failed outside a file's own error
                chunk_results = [FileResult(sources[i], outs[i], f"failed on the cluster ({type(exc).__name__}: "
                                            f"{str(exc).splitlines()[0] if str(exc) else ''})") for i in idx]
            for i, r in zip(idx, chunk_results):
                results[i] = r
            bar.update(len(idx))
    return [results[i] for i in range(len(sources))]


def _key(path: str) -> str:
    """What two names of one file have in common: the resolved local path, or the URL."""
    local = _local_path(path)
    return path if local is None else str(Path(local).resolve())


def _check_output(src: str, out: str, force: bool, claimed: set[str]) -> str | None:
    """What is wrong with ``out`` before any work is spent on it, or None."""
    key = _key(out)
    if key == _key(src):
        return f"output {out} would overwrite its own input"
    if key in claimed:
        return f"output {out} is also the output of an earlier input"
    if not force and _exists(out):
        return f"output {out} exists (use -f to overwrite it)"
    local = _local_path(out)
    if local is not None:
        from aecodec.cli.io import check_folder

        try:
            check_folder(local)
        except AecError as exc:
            return str(exc)
    claimed.add(key)
    return None

