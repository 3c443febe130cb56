"""A scale hyperprior for the convolutional codec's symbols (Ballé et al. 2018), whose decoder
half runs in exact integer arithmetic (Ballé, Johnston and Minnen 2019), so that it routes
every symbol to the same zstd stream on every machine.

::

    symbols s ─► ÷ gain(q) ─► |ŷ| ─► h_a (float) ─► round ─► z ─────────────► packed (ladder)
                                                             │
                                   integer h_s (numpy, int64 / exact float64) ─► L[c, y, x]
                                                             │
               class = clip((L + G(q)[c] - CLASS_LOW) >> CLASS_SHIFT, 0, classes - 1)

``L`` is the predicted log2 scale of each latent, in units of 1/``LOG_UNITS``, in the code's
own units (quality-free); ``G(q)`` adds the log2 of the encoder gain of quality ``q`` as an
integer interpolated between per-level integer tables, so the class is a prediction of
log2 of the symbol's scale. The class is all the decoder takes from the hyperprior: symbols of
one class pool into one stream (``aecodec.pack``, methods 4 and 5), whose zstd table fits them:
the file's own (method 4), or one the model ships for that class (method 5, ``pack_tables``;
built by ``aecodec.train.tables``).

The float ``h_a`` is the encoder's alone (its output ``z`` is stored), so it may differ between
machines; everything after ``z`` is integer: weights and biases are integers, activations are
integers clipped to ``[0, ACT_MAX]``, and every rescaling is a floor division by a power of
two. The convolutions are im2col products in float64 of integer-valued operands whose sums stay
far below 2**53 (weights under 2**12 and activations under 2**8 or |z| <= Z_MAX, over 2,400
terms, stay under 2**36), so any summation order, thread count or BLAS gives the same integers.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

import numpy as np
import torch
from torch import nn

from aecodec.models.conv import ConvAutoencoder, ConvConfig
from aecodec.models.entropy import FactorizedDensity, lower_bound
from aecodec.models.registry import register_model
from aecodec.models.base import ModelOutput
from aecodec.quantize import quality_position, quantize

if TYPE_CHECKING:
    from aecodec.packtables import PackTables

__all__ = ["HyperConfig", "HyperPrior", "IntSynthesis", "IntLayer", "HyperConvConfig", "HyperConvAutoencoder",
           "HyperRouting", "LOG_UNITS", "ACT_MAX", "Z_MAX"]

LOG_UNITS = 8          # L and G count 1/8 of a log2 step
ACT_MAX = 255          # integer activations are clipped to [0, 255]
WEIGHT_BITS = 8        # |integer weight| <= 2**(WEIGHT_BITS - 1) - 1 after scaling
SCALE_MIN = 0.06       # the smallest scale the rate model takes (symbol units)
Z_MAX = 1 << 12        # |side symbol| a file may hold


@dataclass
class HyperConfig:
    latent_channels: int = 160
    channels: int = 96
    classes: int = 32
    class_low: int = -48        # L + G at the bottom of class 0 (1/8 log2 units): scale 2**-6
    class_shift: int = 2        # a class spans 2**class_shift units: 1/2 of a log2 step


class HyperPrior(nn.Module):
    """The float networks trained on cached latents: ``h_a`` (encoder) and ``h_s`` (decoder,
    exported to ``IntSynthesis`` for coding), and the factorized density of ``z``."""

    def __init__(self, config: HyperConfig) -> None:
        super().__init__()
        self.config = config
        m, n = config.latent_channels, config.channels
        self.h_a = nn.Sequential(nn.Conv2d(m, n, 3, 1, 1), nn.ReLU(), nn.Conv2d(n, n, 5, 2, 2), nn.ReLU(),
                                 nn.Conv2d(n, n, 5, 2, 2))
        self.h_s = nn.Sequential(nn.ConvTranspose2d(n, n, 5, 2, 2, output_padding=1), nn.ReLU(),
                                 nn.ConvTranspose2d(n, n, 5, 2, 2, output_padding=1), nn.ReLU(),
                                 nn.Conv2d(n, m, 3, 1, 1))
        self.z_density = FactorizedDensity(n, 1)
        # The shape of every symbol's conditional density, scaled by its predicted scale: a
        # learned monotone cumulative (heavier tails than a Gaussian fit these latents).
        self.shape = FactorizedDensity(1, 1, init_scale=4.0)

    def analysis(self, y: torch.Tensor) -> torch.Tensor:
        """Float ``z`` (before rounding) of latents ``y`` in code units (symbols ÷ gain)."""
        return self.h_a(y.abs())

    def log_scale(self, z: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        """Float log2 scale of each latent (code units), cropped to the latent grid ``hw``."""
        return self.h_s(z)[..., :hw[0], :hw[1]]

    def symbol_mass(self, s: torch.Tensor, scale: torch.Tensor, pass_bound: bool = True) -> torch.Tensor:
        """Probability of each integer symbol ``s`` given its scale, under the learned shape
        made symmetric: with F the shape's cumulative, G(x) = (F(x) + 1 - F(-x)) / 2 is a
        cumulative with G(x) + G(-x) = 1 whatever F learned, and the mass of s under G is the
        mean of F's masses over [|s| -+ 1/2] / scale and [-|s| -+ 1/2] / scale. So the masses
        of all integers sum to 1 at any scale (F's alone did not: a shape whose median drifts
        from 0 counts some mass twice). Bounded below, the bound passing gradients."""
        scale = lower_bound(scale, SCALE_MIN)
        a = s.abs()
        flat = lambda t: t.reshape(1, 1, 1, -1)  # noqa: E731
        level = torch.zeros(1, dtype=torch.long, device=s.device)
        lo, hi = flat((a - 0.5) / scale), flat((a + 0.5) / scale)
        mass = (self.shape.mass(-hi, -lo, level, pass_bound) + self.shape.mass(lo, hi, level, pass_bound)) / 2
        return mass.reshape(torch.broadcast_shapes(s.shape, scale.shape))

    def symbol_bits(self, s: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """Bits per sample of integer symbols ``s`` given their scales (``symbol_mass``)."""
        mass = self.symbol_mass(s, scale)
        return -torch.log2(mass).sum(dim=tuple(range(1, mass.dim())))

    def z_bits(self, z: torch.Tensor) -> torch.Tensor:
        level = torch.zeros(z.shape[0], dtype=torch.long, device=z.device)
        return self.z_density.bits(z, level)


# ---------------------------------------------------------------------------------------------
# The integer synthesis.


# A product smaller than this many multiply-adds runs on one thread: with 2 threads torch's
# float64 products of a face's size (256 x 864 by 864 x 160) took 8 ms against 1 ms on one,
# and the integer synthesis of a 250x250 face 71 ms against 5, with the other core busy (the
# training run; a batch's reader thread does the same). Exact either way.
ONE_THREAD_BELOW = 1 << 26
_THREADS_LOCK = threading.RLock()


@contextlib.contextmanager
def _one_thread(small: bool) -> Iterator[None]:
    """Run the block on one torch thread if ``small`` (else as it is)."""
    if not small:
        yield
        return
    with _THREADS_LOCK:  # the thread count is the process's: one change at a time, always restored
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)


# float32 holds every integer of magnitude up to 2**24 exactly, and a sum of such integers
# whose every partial sum stays that small is exact in any order. A layer whose largest row
# sum of |weights| times the largest |input| is below this bound (the last two layers of every
# shipped hyperprior always; the first one while the side symbols stay below ~1400 in magnitude) runs
# its products in float32, about twice as fast as float64 here, with the same integers out.
F32_EXACT_BELOW = 1 << 24


def float32_products_are_ieee() -> bool:
    """Whether torch's float32 matrix products on the CPU are plain IEEE ones: a program may
    allow bfloat16 or TF32 inside them (``torch.set_float32_matmul_precision("medium")`` makes
    oneDNN multiply in bfloat16), which would break the exactness above. Otherwise float64."""
    if torch.get_float32_matmul_precision() != "highest":
        return False
    mkldnn = getattr(torch.backends, "mkldnn", None)
    for obj in (torch.backends, mkldnn, getattr(mkldnn, "matmul", None)):
        if getattr(obj, "fp32_precision", "ieee") not in ("ieee", "none"):
            return False
    return True


def _product(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> None:
    with _one_thread(a.shape[0] * a.shape[1] * b.shape[1] < ONE_THREAD_BELOW):
        torch.matmul(a, b, out=out)


def _tap_major(weight: np.ndarray, k: int, dtype: type = np.float64) -> torch.Tensor:
    """A convolution ``weight`` (O, C*k*k) as the (k*k*C, O) matrix ``_conv_rows`` multiplies
    by: rows in (tap row, tap column, channel) order, the order its input columns are copied in."""
    o = len(weight)
    c = weight.shape[1] // (k * k)
    return torch.from_numpy(np.ascontiguousarray(weight.reshape(o, c, k, k).transpose(2, 3, 1, 0).reshape(k * k * c, o),
                                                 dtype))


def _conv_rows(x: np.ndarray, weight: np.ndarray, k: int, rows: int, tapped: torch.Tensor | None = None,
               dtype: type = np.float64) -> np.ndarray:
    """Stride-1 convolution (padding k // 2) of ``x`` (C, H, W) by ``weight`` (O, C*k*k):
    (H * W, O) sums, as im2col products of at most ``rows`` output positions at a time
    (``tapped``: ``_tap_major(weight, k, dtype)``, made once by a caller that convolves often),
    in ``dtype`` (float32 only where the sums are exact in it: ``F32_EXACT_BELOW``)."""
    c, h, w = x.shape
    # Channels last, so that each tap's copy into the columns moves runs of C values (a copy
    # gathered from a sliding-window view, C outermost, took half of a face's routing time).
    p = np.pad(x.transpose(1, 2, 0), ((k // 2, k // 2), (k // 2, k // 2), (0, 0)))
    out = np.empty((h * w, len(weight)), dtype)
    wt = _tap_major(weight, k, dtype) if tapped is None else tapped
    step = max(1, rows // max(w, 1))
    cols = np.empty((min(step, h), w, k, k, c), dtype)
    for top in range(0, h, step):
        n = min(step, h - top)
        for ky in range(k):
            for kx in range(k):
                cols[:n, :, ky, kx] = p[top + ky:top + ky + n, kx:kx + w]
        # torch's float64 product, not numpy's: numpy's BLAS (OpenBLAS) runs its own threads,
        # which spin against torch's on a small machine (a 250x250 face took 118 ms with 2
        # threads against 26 with 1; benchmarks/face_latency.md). Exact in any summation order
        # (integers), so the column order changes nothing.
        _product(torch.from_numpy(cols[:n].reshape(n * w, k * k * c)), wt, torch.from_numpy(out[top * w:(top + n) * w]))
    return out


def _phase_kernels(weight: np.ndarray, k: int) -> list[tuple[int, int, np.ndarray, int]]:
    """A stride-2 transposed convolution's ``weight`` (O, C*k*k, stride-1 form on the
    zero-upsampled input) as four kernels, one per output phase (row and column parity): the
    taps that land on samples, on a (2r + 1) x (2r + 1) window of the input itself:
    (row phase, column phase, kernel, window side)."""
    o = len(weight)
    c = weight.shape[1] // (k * k)
    full = weight.reshape(o, c, k, k)
    half = k // 2
    r = (half + 1) // 2  # a phase's taps reach input offsets -r..r
    phases = []
    for py in range(2):
        for px in range(2):
            sub = np.zeros((o, c, 2 * r + 1, 2 * r + 1), np.float64)
            for ky in range(py % 2 ^ half % 2, k, 2):  # (py + ky - half) even
                for kx in range(px % 2 ^ half % 2, k, 2):
                    sub[:, :, (py + ky - half) // 2 + r, (px + kx - half) // 2 + r] = full[:, :, ky, kx]
            phases.append((py, px, sub.reshape(o, -1), 2 * r + 1))
    return phases


def _tapped_phases(phases: list[tuple[int, int, np.ndarray, int]],
                   dtype: type = np.float64) -> list[tuple[int, int, np.ndarray, int, torch.Tensor]]:
    return [(py, px, sub, side, _tap_major(sub, side, dtype)) for py, px, sub, side in phases]


def _conv_up_rows(x: np.ndarray, weight: np.ndarray, k: int, rows: int,
                  phases: list[tuple[int, int, np.ndarray, int, torch.Tensor]] | None = None,
                  dtype: type = np.float64) -> np.ndarray:
    """``_conv_rows(_upsample2(x), weight, k, rows)``, the same sums, without multiplying the
    zeros: each of the four output phases is a stride-1 convolution of ``x`` itself by its
    ``_phase_kernels`` (3x3 for k = 5; pass ``phases``, ``_tapped_phases`` of them, to reuse them). The products are those of
    the zero-upsampled form minus the zero ones, and float64 sums of integers below 2**53 are
    exact in any order, so the result is identical."""
    c, h, w = x.shape
    o = len(weight)
    out = np.empty((2 * h, 2 * w, o), np.float64)
    for py, px, sub, side, tapped in phases if phases is not None else _tapped_phases(_phase_kernels(weight, k), dtype):
        out[py::2, px::2] = _conv_rows(x, sub, side, rows, tapped, dtype).reshape(h, w, o)
    return out.reshape(4 * h * w, o)


def _upsample2(x: np.ndarray) -> np.ndarray:
    """Zeros between samples: what a stride-2 transposed convolution convolves."""
    c, h, w = x.shape
    out = np.zeros((c, 2 * h, 2 * w), x.dtype)
    out[:, ::2, ::2] = x
    return out


@dataclass(frozen=True)
class IntLayer:
    weight: np.ndarray   # (O, C*k*k) float64 of integers (stride-1 convolution form)
    bias: np.ndarray     # (O,) float64 of integers
    k: int
    up: bool             # a stride-2 transposed convolution (zero-upsample first)
    shift: int           # floor-divide the sums by 2**shift
    relu: bool           # clip to [0, ACT_MAX] (else: the output layer, unclipped)


class IntSynthesis:
    """``h_s`` in integers: exact, whatever the machine, thread count or memory layout."""

    ROWS = 4096  # output positions per product (bounds memory on large grids)

    def __init__(self, layers: list[IntLayer]) -> None:
        self.layers = layers
        # each layer's products in float64 and in float32, taken per call by F32_EXACT_BELOW
        kernels = [_phase_kernels(layer.weight, layer.k) if layer.up else None for layer in layers]
        self._phases = {dt: [None if kern is None else _tapped_phases(kern, dt) for kern in kernels]
                        for dt in (np.float64, np.float32)}
        self._tapped = {dt: [None if layer.up else _tap_major(layer.weight, layer.k, dt) for layer in layers]
                        for dt in (np.float64, np.float32)}
        # the largest sum of |weights| of an output: times the largest |input|, the bound of
        # every partial sum of its products (a phase kernel holds a subset of those weights)
        self._row_abs = [float(np.abs(layer.weight).sum(axis=1).max()) if layer.weight.size else 0.0
                         for layer in layers]

    def __call__(self, z: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
        """Integer log2 scales L (M, H, W) int64 of integer ``z`` (N, h, w)."""
        x = np.asarray(z, np.int64)
        if x.size and int(np.abs(x).max()) > Z_MAX:
            raise ValueError(f"a side symbol exceeds {Z_MAX}")
        x = x.astype(np.float64)
        ieee32 = float32_products_are_ieee()
        for i, layer in enumerate(self.layers):
            big = float(np.abs(x).max()) if x.size else 0.0
            dt = np.float32 if ieee32 and self._row_abs[i] * big < F32_EXACT_BELOW else np.float64
            phases, tapped = self._phases[dt][i], self._tapped[dt][i]
            if layer.up:
                # A transposed convolution (k = 5, stride 2, padding 2, output padding 1) is a
                # stride-1 convolution, with the flipped kernel, of the input with zeros between
                # and after its samples, padded by 2 on each side (_upsample2), computed one
                # output phase at a time without the zeros (_conv_up_rows).
                c, h, w = x.shape[0], 2 * x.shape[1], 2 * x.shape[2]
                out = _conv_up_rows(x, layer.weight, layer.k, self.ROWS, phases, dt)
            else:
                c, h, w = x.shape
                out = _conv_rows(x, layer.weight, layer.k, self.ROWS, tapped, dt).astype(np.float64, copy=False)
            out += layer.bias
            out *= 2.0 ** -layer.shift  # (in place: exact, a power of two; a 24 MP grid's output is 240 MB)
            np.floor(out, out=out)
            if layer.relu:
                np.clip(out, 0, ACT_MAX, out=out)
            x = out.T.reshape(-1, h, w)
        return x[:, :hw[0], :hw[1]].astype(np.int64)



# ---------------------------------------------------------------------------------------------
# The model: the convolutional codec with the hyperprior routing its symbols.


@dataclass
class HyperConvConfig(ConvConfig):
    hyper_channels: int = HyperConfig.channels
    classes: int = HyperConfig.classes
    class_low: int = HyperConfig.class_low
    class_shift: int = HyperConfig.class_shift
    table_bytes: int = 0  # size of the prebuilt stream tables (packing method 5); 0: none


@register_model("conv-hyper")
class HyperConvAutoencoder(ConvAutoencoder):
    """``ConvAutoencoder`` whose files may be packed with methods 4 and 5: the same transforms
    and symbols, with a hyperprior choosing each symbol's stream (``routing``)."""

    Config = HyperConvConfig

    def __init__(self, config: HyperConvConfig) -> None:
        super().__init__(config)
        m, n = config.latent_channels, config.hyper_channels
        self.hyper = HyperPrior(HyperConfig(m, n, config.classes, config.class_low, config.class_shift))
        # The integer synthesis (export_int) and the integer log2 encoder gains of each level.
        for i, (o, c) in enumerate([(n, n * 25), (n, n * 25), (m, n * 9)]):
            self.register_buffer(f"int_w{i}", torch.zeros(o, c, dtype=torch.int32))
            self.register_buffer(f"int_b{i}", torch.zeros(o, dtype=torch.int64))
        self.register_buffer("int_shift", torch.zeros(3, dtype=torch.int64))
        self.register_buffer("log_gain_int", torch.zeros(config.levels, m, dtype=torch.int64))
        self.register_buffer("pack_tables", torch.zeros(config.table_bytes, dtype=torch.uint8))

    def forward(self, x: torch.Tensor, level: torch.Tensor) -> ModelOutput:
        """Joint training pass (transforms, gains and hyperprior together; ``level``: (B,) rate
        levels). The rate is the hyperprior's: symbols with uniform noise under their predicted
        scales, plus z with noise (with ``rate_proxy`` "ste": the rounded symbols and z, the rate
        of what a file stores); the hyperprior reads the rounded symbols (straight through), as
        the encoder does, and z rounded. The rate runs in float32 even under autocast. The
        integer synthesis and the stream tables are not trained: they are re-exported from the
        float networks (``aecodec.train.hyper.export_int``, ``tools/build_tables.py``) before a
        model is shipped."""
        y = self.g_a(x).float()
        g = torch.exp(self._log_gains()[level])[:, :, None, None]
        scaled = y * g
        rounded = quantize(scaled, "ste")
        with torch.autocast(x.device.type, enabled=False):
            z = self.hyper.analysis(rounded / g)
            z_hat = z + (torch.round(z) - z).detach()
            log_scale = self.hyper.log_scale(z_hat, scaled.shape[-2:])
            noisy = self.rate_proxy == "noise"
            bits = (self.hyper.symbol_bits(quantize(scaled, "noise") if noisy else rounded, torch.exp2(log_scale) * g)
                    + self.hyper.z_bits(z + torch.empty_like(z).uniform_(-0.5, 0.5) if noisy else z_hat))
        x_hat = self.g_s((rounded * torch.exp(self.log_inv_gain[level])[:, :, None, None]).to(x.dtype))
        return ModelOutput(x_hat=x_hat, bits=bits, code=y)

    def level_bits(self, symbols: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        """The float hyperprior's bits of rounded symbols (given z rounded) plus z's."""
        g = torch.exp(self._log_gains()[level])[:, :, None, None]
        z = torch.round(self.hyper.analysis(symbols / g))
        scale = torch.exp2(self.hyper.log_scale(z, symbols.shape[-2:])) * g
        return self.hyper.symbol_bits(symbols, scale) + self.hyper.z_bits(z)

    def soft_bits(self, z: torch.Tensor, quality: float) -> torch.Tensor:
        """Bits per image of (soft-rounded) scaled latents ``z`` at ``quality`` under the
        hyperprior, the rate the packer routes by (the effort search's rate term; the plain
        model's factorized density would aim it at a code these files do not use): the side
        symbols from the rounded latents, as the encoder makes them, held fixed within a step;
        float32 even under autocast."""
        enc, _ = self._gains_at(quality)
        enc = enc.detach().to(z.device)
        with torch.autocast(z.device.type, enabled=False):
            zf = z.float()
            with torch.no_grad():
                side = torch.round(self.hyper.analysis(torch.round(zf) / enc)).clamp_(-Z_MAX, Z_MAX)
                scale = torch.exp2(self.hyper.log_scale(side, zf.shape[-2:])) * enc
            return self.hyper.symbol_bits(zf, scale) + self.hyper.z_bits(side)

    def set_integer(self, synthesis: IntSynthesis) -> None:
        """Store an exported synthesis and the current encoder gains as integers."""
        for i, layer in enumerate(synthesis.layers):
            if np.abs(layer.weight).max() >= 1 << 12:
                raise ValueError(f"integer weights of layer {i} need more than 12 bits")
            getattr(self, f"int_w{i}").copy_(torch.from_numpy(layer.weight.astype(np.int64)))
            getattr(self, f"int_b{i}").copy_(torch.from_numpy(layer.bias.astype(np.int64)))
            self.int_shift[i] = layer.shift
        with torch.no_grad():
            g = torch.round(self._log_gains().double() / math.log(2) * LOG_UNITS)
        self.log_gain_int.copy_(g.to(torch.int64))
        self._synthesis = None

    def synthesis(self) -> IntSynthesis:
        cached = getattr(self, "_synthesis", None)
        if cached is None:
            ks, ups = (5, 5, 3), (True, True, False)
            cached = IntSynthesis([
                IntLayer(getattr(self, f"int_w{i}").cpu().numpy().astype(np.float64),
                         getattr(self, f"int_b{i}").cpu().numpy().astype(np.float64),
                         ks[i], ups[i], int(self.int_shift[i]), i < 2) for i in range(3)])
            self._synthesis = cached
        return cached

    def tables(self) -> "PackTables | None":
        """The prebuilt stream tables (``aecodec.packtables``), parsed once; None if it has none."""
        if not self.config.table_bytes:
            return None
        cached = getattr(self, "_tables", None)
        if cached is None:
            from aecodec.packtables import PackTables
            cached = self._tables = PackTables.from_bytes(self.pack_tables.cpu().numpy().tobytes())
        return cached

    def routing(self, quality: float) -> "HyperRouting":
        return HyperRouting(self, quality)


class HyperRouting:
    """``aecodec.pack.Routing`` of a hyperprior model at one quality."""

    def __init__(self, model: HyperConvAutoencoder, quality: float) -> None:
        cfg = model.config
        self.model, self.quality, self.classes = model, float(quality), cfg.classes
        self.tables = model.tables()
        self._lock = threading.Lock()
        self._scales: dict[tuple, np.ndarray] = {}  # key of side symbols -> their log2 scales, oldest first
        self.low, self.shift = cfg.class_low, cfg.class_shift
        lo, hi, t = quality_position(quality, cfg.levels)
        t64 = min(int(t * 64), 64)  # IEEE arithmetic on the header's quality: alike everywhere
        g = model.log_gain_int.cpu().numpy()
        self.gain = (g[lo] * (64 - t64) + g[hi] * t64) >> 6

    def side_shape(self, shape: tuple[int, ...]) -> tuple[int, int, int]:
        _, h, w = shape
        return self.model.config.hyper_channels, -(-h // 4), -(-w // 4)

    def side(self, grid: np.ndarray) -> np.ndarray:
        enc, _ = self.model._gains_at(self.quality)
        # the hyper analysis of a small grid (a face's: 160 x 16 x 16) on one thread, as the
        # synthesis's products (ONE_THREAD_BELOW)
        with torch.inference_mode(), _one_thread(np.size(grid) * 9 * self.model.config.hyper_channels < ONE_THREAD_BELOW):
            y = torch.from_numpy(np.asarray(grid, np.float32))[None].to(enc.device) / enc
            z = torch.round(self.model.hyper.analysis(y)).clamp_(-Z_MAX, Z_MAX)
        return z[0].cpu().numpy().astype(np.int64)

    # Log2 scales kept (bytes): pack() tries methods 4 and 7 at once on the same side symbols, and
    # the batch encoder computes a window's on the network's thread (``warm``) for its packing
    # thread to find, so the synthesis runs once a grid. The newest is always kept, whatever its size.
    SCALES_KEPT_BYTES = 64 << 20

    def _log_scales(self, side: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        side = np.ascontiguousarray(side, np.int64)
        key = (hashlib.blake2b(side.tobytes(), digest_size=16).digest(), side.shape, tuple(shape))
        with self._lock:  # (another thread wanting the same grid waits for it)
            hit = self._scales.get(key)
            if hit is None:
                # kept as int32 (the values are small): on a 24-megapixel grid, 120 MB instead of 240
                hit = self._scales[key] = self.model.synthesis()(side, tuple(shape[1:])).astype(np.int32)
                held = sum(v.nbytes for v in self._scales.values())
                while held > self.SCALES_KEPT_BYTES and len(self._scales) > 1:
                    held -= self._scales.pop(next(iter(self._scales))).nbytes
        return hit

    def warm(self, side: np.ndarray, shape: tuple[int, ...]) -> None:
        """Run the hyper synthesis of ``side`` now, for ``scale_keys`` and ``route`` to find."""
        self._log_scales(side, shape)

    def scale_keys(self, side: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """Every symbol's predicted log2 scale at this quality, in integer 1/8 units (its class
        is this, offset and shifted, clipped): packing method 7 orders runs by it."""
        log_scale = self._log_scales(side, shape)
        # int32, a new array (route works in it): int64 and its temporaries took 240 MB each on
        # a 24-megapixel grid, the compress peak
        return log_scale + self.gain[:, None, None].astype(np.int32)

    def route(self, side: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """Every symbol's class (int16): its predicted scale key, offset, shifted and clipped."""
        k = self.scale_keys(side, shape)
        k -= self.low
        k >>= self.shift
        np.clip(k, 0, self.classes - 1, out=k)
        return k.astype(np.int16)
