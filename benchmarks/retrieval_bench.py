"""Identity retrieval on LFW test people from aecodec codes vs pixel and PCA baselines; search speed.

Run from the repository root (about 8 minutes on 2 shared CPU cores, most of it encoding)::

    nice -n 10 python benchmarks/retrieval_bench.py            # writes benchmarks/retrieval.md
    nice -n 10 python benchmarks/retrieval_bench.py --limit 200 --sweep 100 --out /tmp/r.md   # a quick look

Leave-one-out: every image queries all the others; precision@k is the fraction of its k
nearest neighbours that show the same person, averaged over queries. The aecodec rows go
through the real path: each image is compressed to a `.aec` file, the folder is indexed with
``build_index`` (symbols read straight from the files) and searched with ``Index.search_vectors``.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aecodec.api import Codec  # noqa: E402
from aecodec.bench.timing import median_ms  # noqa: E402
from aecodec.retrieval import Index, build_index  # noqa: E402
from aecodec.train.data import face_crop, lfw_images  # noqa: E402
from aecodec.weights import load_shipped  # noqa: E402

KS = (1, 5)
LFW = "/work/shared/data/lfw/lfw.tgz"
MODEL = ["conv-faces", "conv-faces"]  # the face model indexed (--model) and its version, for the rows


def normalized(v: np.ndarray) -> np.ndarray:
    v = v.astype(np.float32).reshape(len(v), -1)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def loo_precision(index: Index, labels: np.ndarray, queries: np.ndarray | None = None) -> list[float]:
    """Leave-one-out precision@k: row i of ``queries`` (default: the index's own vectors)
    searches the index; entry i itself is dropped from its neighbours."""
    q = index.vectors if queries is None else queries
    idx, _ = index.search_vectors(q, max(KS) + 1)
    rows = np.arange(len(idx))[:, None]
    keep = idx != rows
    keep[keep.all(1), -1] = False  # self not among the first k+1 (a tie): drop the last one
    nn = idx[keep].reshape(len(idx), max(KS))
    same = labels[nn] == labels[:, None]
    return [float(same[:, :k].mean()) for k in KS]


def euclid_precision(v: np.ndarray, labels: np.ndarray) -> list[float]:
    v = v.astype(np.float64)
    sq = (v * v).sum(1)
    d = sq[:, None] + sq[None] - 2 * v @ v.T
    np.fill_diagonal(d, np.inf)
    nn = np.argsort(d, axis=1)[:, : max(KS)]
    same = labels[nn] == labels[:, None]
    return [float(same[:, :k].mean()) for k in KS]


def vector_index(v: np.ndarray) -> Index:
    return Index(model="none", weights_hash=bytes(8), vectors=normalized(v), paths=[str(i) for i in range(len(v))],
                 qualities=np.zeros(len(v), np.float32))


def write_aecs(images: list[np.ndarray], names: list[str], folder: Path, model: str, quality: float) -> float:
    """Compress every image into ``folder``; returns seconds per image."""
    folder.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    for name, data in zip(names, Codec(model, quality).compress_many(images, batch=16)):
        if isinstance(data, Exception):
            raise data
        (folder / f"{name}.aec").write_bytes(data)
    return (time.perf_counter() - t) / len(images)


def timing_rows(dim: int, n: int, aec_query: Path, image_query: np.ndarray, lm_name: str) -> list[str]:
    """Search times on ``n`` synthetic unit vectors of the real descriptor length."""
    lm = load_shipped(lm_name)
    rng = np.random.default_rng(0)
    index = Index(model=lm.name, weights_hash=lm.weights_hash, vectors=normalized(rng.standard_normal((n, dim))),
                  paths=[f"/collection/face_{i:05d}.aec" for i in range(n)], qualities=np.full(n, 50, np.float32))
    q = index.vectors[:1] + 0.01
    rows = []
    for what, fn, reps in [
        ("search one vector (matrix product + argpartition)", lambda: index.search_vectors(q, 5), 50),
        ("search one `.aec` file (read, unpack, describe, search)", lambda: index.search(aec_query, 5), 20),
        ("search one 250x250 image (encode, describe, search)", lambda: index.search(image_query, 5), 5),
    ]:
        rows.append(f"| {what} | {n:,} x {dim} | {median_ms(fn, runs=reps, warm=1):.1f} |")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.npz"
        index.save(path)
        t = time.perf_counter()
        Index.load(path)
        rows.append(f"| `Index.load` ({path.stat().st_size / 2**20:.0f} MiB file) | {n:,} x {dim} | "
                    f"{1000 * (time.perf_counter() - t):.0f} |")
    return rows


def labels_of(index: Index, label_of: dict[str, int]) -> np.ndarray:
    return np.array([label_of[Path(p).stem] for p in index.paths])


def aecodec_rows(images: list[np.ndarray], names: list[str], label_of: dict[str, int], base: Path,
                 notes: list[str]) -> tuple[list[tuple[str, int, list[float]]], Path]:
    """conv-faces codes of the photos (three descriptors), of face crops, and eigenfaces codes."""
    rows: list[tuple[str, int, list[float]]] = []
    folder = base / "q50"
    per = write_aecs(images, names, folder, MODEL[0], 50.0)
    t = time.perf_counter()
    centre = build_index([folder])
    per_aec = (time.perf_counter() - t) / len(images)
    size = np.mean([p.stat().st_size for p in folder.iterdir()])
    notes.append(f"{MODEL[1]} q=50: compress {1000 * per:.0f} ms/image (batches of 16), index the `.aec` "
                 f"files {1000 * per_aec:.1f} ms/file, mean file {size:.0f} B")
    for kind in ("centre", "full", "grid4"):
        ix = centre if kind == "centre" else build_index([folder], descriptor=kind)
        rows.append((f"aecodec {MODEL[1]} q=50, 250x250 photo, `{kind}`", ix.vectors.shape[1],
                     loo_precision(ix, labels_of(ix, label_of))))
    write_aecs([face_crop(im, 128) for im in images], names, base / "crop", MODEL[0], 50.0)
    ix = build_index([base / "crop"], descriptor="full")
    rows.append((f"aecodec {MODEL[1]} q=50, 128x128 face crop, `full`", ix.vectors.shape[1],
                 loo_precision(ix, labels_of(ix, label_of))))
    write_aecs([face_crop(im, 64) for im in images], names, base / "eig", "eigenfaces", 50.0)
    ix = build_index([base / "eig"])
    rows.append(("aecodec eigenfaces q=50, 64x64 face crop (whitened coefficients)", ix.vectors.shape[1],
                 loo_precision(ix, labels_of(ix, label_of))))
    return rows, folder


def sweep_rows(images: list[np.ndarray], names: list[str], label_of: dict[str, int], base: Path,
               q50: Path) -> list[tuple[str, int, list[float]]]:
    """Qualities 20 and 80 on their own, and as queries against an index made at 50."""
    rows: list[tuple[str, int, list[float]]] = []
    ref = build_index([q50 / f"{name}.aec" for name in names])
    labs = labels_of(ref, label_of)
    rows.append(("index q=50, queries q=50", ref.vectors.shape[1], loo_precision(ref, labs)))
    for q in (20.0, 80.0):
        write_aecs(images, names, base / f"q{q:g}", MODEL[0], q)
        other = build_index([base / f"q{q:g}"])
        assert [Path(p).stem for p in other.paths] == [Path(p).stem for p in ref.paths]
        rows.append((f"index q={q:g}, queries q={q:g}", other.vectors.shape[1], loo_precision(other, labs)))
        rows.append((f"index q=50, queries q={q:g}", other.vectors.shape[1], loo_precision(ref, labs, other.vectors)))
    return rows


def baseline_rows(images: list[np.ndarray], labels: np.ndarray) -> list[tuple[str, int, list[float]]]:
    rows: list[tuple[str, int, list[float]]] = []
    px = np.stack([face_crop(im, 32) for im in images]).astype(np.float32) / 255
    rows.append(("pixels, 32x32 RGB face crop", px[0].size, loo_precision(vector_index(px), labels)))
    gray = px.mean(-1)
    rows.append(("pixels, 32x32 gray face crop", gray[0].size, loo_precision(vector_index(gray), labels)))
    ef = load_shipped("eigenfaces").model
    x = torch.from_numpy(np.stack([face_crop(im, 64) for im in images])).permute(0, 3, 1, 2)
    coef = ef.coefficients(x.reshape(len(images), -1).float() / 255).numpy()
    rows.append(("PCA: eigenfaces coefficients (float, 128)", coef.shape[1], loo_precision(vector_index(coef), labels)))
    white = coef / ef.std.numpy()
    rows.append(("PCA: eigenfaces coefficients, whitened", coef.shape[1], loo_precision(vector_index(white), labels)))
    rows.append(("PCA: eigenfaces coefficients, Euclidean distance", coef.shape[1], euclid_precision(coef, labels)))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", default=LFW)
    ap.add_argument("--limit", type=int, default=None, help="first N images only (sorted by file name)")
    ap.add_argument("--sweep", type=int, default=400, help="images in the quality sweep (0: none)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "retrieval.md"))
    ap.add_argument("--n-synthetic", type=int, default=10_000)
    ap.add_argument("--model", default="conv-faces", help="the face model whose codes are indexed (a family: its newest version)")
    args = ap.parse_args()
    from aecodec.weights import resolve
    # "conv-faces.v1" names version 1, whose exact name is the bare family name
    MODEL[:] = [args.model, args.model if ".v" in args.model else resolve(args.model)]
    torch.manual_seed(0)

    entries, images = lfw_images(args.lfw, "test", min_per_person=2, limit=args.limit)
    names = [Path(e.member).stem for e in entries]
    _, labels = np.unique([e.person for e in entries], return_inverse=True)
    n = len(images)
    label_of = dict(zip(names, labels.tolist()))
    counts = np.bincount(labels)
    chance = float(((counts[labels] - 1) / (n - 1)).mean())
    notes: list[str] = []
    print(f"{n} images of {len(counts)} people", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        rows, q50 = aecodec_rows(images, names, label_of, base, notes)
        print(rows, flush=True)
        m = min(args.sweep, n)
        sweep = sweep_rows(images[:m], names[:m], label_of, base / "sweep", q50) if m else []
        timings = timing_rows(rows[0][1], args.n_synthetic, next(q50.glob("*.aec")), images[0], MODEL[0])
    rows += baseline_rows(images, labels)
    rows.append(("chance (random neighbours)", 0, [chance, chance]))
    write_report(Path(args.out), rows, sweep, m, timings, notes, n, len(counts), args)


def _table(rows: list[tuple[str, int, list[float]]], head: str) -> list[str]:
    out = [f"| {head} | length | P@1 | P@5 |", "|---|---|---|---|"]
    return out + [f"| {name} | {dim if dim else '-'} | {p[0]:.3f} | {p[1]:.3f} |" for name, dim, p in rows]


def summary(rows: list[tuple[str, int, list[float]]]) -> str:
    """One sentence: the best aecodec row against the best baseline row, by P@1."""
    ours = max((r for r in rows if r[0].startswith("aecodec")), key=lambda r: r[2][0])
    base = max((r for r in rows if not r[0].startswith(("aecodec", "chance"))), key=lambda r: r[2][0])
    winner = "aecodec codes win" if ours[2][0] > base[2][0] else "the baseline wins"
    return (f"Best aecodec row: {ours[0]} (P@1 {ours[2][0]:.3f}, P@5 {ours[2][1]:.3f}); best baseline: {base[0]} "
            f"(P@1 {base[2][0]:.3f}, P@5 {base[2][1]:.3f}): {winner}.")


def write_report(out: Path, rows: list[tuple[str, int, list[float]]], sweep: list[tuple[str, int, list[float]]],
                 m: int, timings: list[str], notes: list[str], n: int, people: int, args: argparse.Namespace) -> None:
    cmd = "nice -n 10 python benchmarks/retrieval_bench.py" + (f" --limit {args.limit}" if args.limit else "") + \
        (f" --sweep {args.sweep}" if args.sweep != 400 else "")
    lines = [
        "# Face retrieval from codes",
        "",
        f"Produced by `{cmd}` on {platform.machine()} ({torch.get_num_threads()} torch threads, shared with "
        f"other jobs; numpy {np.__version__}, torch {torch.__version__}).",
        "",
        f"LFW test people (deterministic person split, `is_test_person`) with at least two images: {n} images "
        f"of {people} people (`lfw_images(..., 'test', min_per_person=2)`"
        + (f", first {args.limit}" if args.limit else "") + "). Leave-one-out: each image queries all the others; "
        "precision@k = fraction of its k nearest neighbours that show the same person. Cosine distance on "
        "L2-normalized vectors unless the row says otherwise. No model saw these people in training.",
        "",
        *_table(rows, "descriptor"),
        "",
        summary(rows),
        "",
        "Notes: " + "; ".join(notes) + ".",
    ]
    if sweep:
        lines += ["", "## Across qualities", "",
                  f"`centre` descriptor, the first {m} of those images (a deterministic subset, to keep the run "
                  "short); the index and the queries may be made at different qualities.", "",
                  *_table(sweep, f"{MODEL[1]} codes")]
    lines += ["", "## Search time", "",
              "Synthetic unit vectors of the `centre` descriptor's length, one query, k = 5, median of repeats.",
              "", "| operation | index | ms |", "|---|---|---|", *timings, ""]
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
