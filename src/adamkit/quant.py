r"""Blockwise-quantized state formats: a moment stored as small integer codes plus one float32
scale per block, as bitsandbytes' ``AdamW8bit`` and torchao's ``AdamW4bit`` store theirs.

A tensor ``x`` is cut into blocks of ``block`` consecutive elements (row-major, over the whole
tensor; the last block may be short). Each block keeps ``absmax = max |x|`` (float32) and each
element the index of the map value nearest to ``x / absmax``; ``dequantize`` gives back
``map[code] * absmax``. Two maps per format: a signed one for the first moment and an unsigned
one for the second (which slot takes which is the ``signed`` attribute of its
:class:`adamkit.rules.Slot`).

Only tensors the format :meth:`~StateFormat.quantizes` are stored this way (bitsandbytes and
torchao leave tensors under 4,096 elements unquantized); the others keep plain moments.

Blocks lie over the tensor a kernel sees, so under dim-0 sharding (a DTensor's local shard) a
block never straddles a shard boundary; a sharded run's blocks equal an unsharded run's when each
shard's element count divides by the block size.

These are pure functions of NumPy arrays or torch tensors (see :func:`adamkit.rules.namespace`),
so the reference kernel and :mod:`adamkit.numpy` share them.
"""

from dataclasses import dataclass
from typing import NamedTuple

import numpy


def _linspace_means(count):
    """Midpoints of ``count + 1`` evenly spaced points from 0.1 to 1 (float64)."""
    bounds = numpy.linspace(0.1, 1.0, count + 1)
    return (bounds[:-1] + bounds[1:]) / 2


def dynamic_map(signed, max_exponent_bits=7, total_bits=8):
    """bitsandbytes' dynamic map (``create_dynamic_map``; Dettmers 2016), sorted, as float32.

    Exponent ``i`` (0 .. max_exponent_bits-1) contributes the midpoints of an even grid on
    [0.1, 1] times ``10**(i - max_exponent_bits + 1)``, mirrored for a signed map; then 0 and 1.
    bitsandbytes computes the grid with float32 ``torch.linspace``, whose last bit depends on the
    CPU's vector width; here it is computed in float64 and rounded once, so its entries are within
    one float32 ulp of bitsandbytes' on any machine.
    """
    non_sign_bits = total_bits - 1
    data = []
    for i in range(max_exponent_bits):
        count = 2 ** (i + non_sign_bits - max_exponent_bits + (0 if signed else 1))
        means = 10.0 ** (i - max_exponent_bits + 1) * _linspace_means(count)
        data += list(means) + (list(-means) if signed else [])
    extra = 2 ** (non_sign_bits - max_exponent_bits) - 1
    if extra > 0:  # the codes left when the exponent bits are all zero
        means = 10.0 ** (i - max_exponent_bits + 1) * _linspace_means(extra)
        data += list(means) + (list(-means) if signed else [])
    data += [0.0, 1.0]
    assert len(data) == 2**total_bits
    return numpy.sort(numpy.array(data, dtype=numpy.float32))


def linear_map_without_zero(total_bits=4):
    """torchao's unsigned 4-bit map: ``linspace(0, 1, 2**bits + 1)[1:]`` (1/16 .. 1, no zero)."""
    return numpy.linspace(0.0, 1.0, 2**total_bits + 1, dtype=numpy.float32)[1:]


@dataclass(frozen=True)
class StateFormat:
    """How a quantized moment is stored; a record, read by the optimizers, kernels and tests."""

    name: str
    summary: str
    bits: int  # per code; two 4-bit codes share a byte
    block: int  # elements per float32 scale
    signed_map: numpy.ndarray  # sorted float32, 2**bits values
    unsigned_map: numpy.ndarray
    ties: str  # "down" or "up": where a value halfway between two map entries goes
    min_size: int = 4096  # smaller tensors are not quantized
    divides: int = 1  # ... nor tensors whose size this does not divide
    fallback: str = "float32"  # how an unquantized tensor keeps its moments: "float32" or "param"
    peer: str = ""

    def quantizes(self, numel):
        """Whether a tensor of ``numel`` elements is stored quantized."""
        return numel >= self.min_size and numel % self.divides == 0

    def map(self, signed):
        return self.signed_map if signed else self.unsigned_map

    def blocks(self, numel):
        return -(-numel // self.block)

    def code_bytes(self, numel):
        return -(-numel * self.bits // 8)


STATE_FORMATS = {f.name: f for f in (
    StateFormat("8bit", "8-bit codes, blocks of 256, bitsandbytes' dynamic maps", 8, 256,
                dynamic_map(True), dynamic_map(False), ties="down", peer="bitsandbytes.optim.AdamW8bit"),
    StateFormat("4bit", "4-bit codes, blocks of 128, torchao's maps (dynamic signed, linear unsigned)", 4, 128,
                dynamic_map(True, 3, 4), linear_map_without_zero(4), ties="up", divides=128, fallback="param",
                peer="torchao.optim.AdamW4bit"),
)}


def _torch_map(table, like):
    import torch

    key = (table.ctypes.data, like.device)
    if key not in _TORCH_MAPS:
        _TORCH_MAPS[key] = torch.as_tensor(table, device=like.device)
    return _TORCH_MAPS[key]


_TORCH_MAPS = {}


def _is_torch(x):
    return type(x).__module__.partition(".")[0] == "torch"


def quantize(x, fmt, *, signed):
    """``(codes, absmax)`` of ``x``: uint8 codes, flat (two per byte for 4 bits), and one float32
    scale per block of ``fmt.block`` elements; each element takes the nearest map value."""
    fmt = STATE_FORMATS[fmt] if isinstance(fmt, str) else fmt
    table = fmt.map(signed)
    n, block = _numel(x), fmt.block
    pad = fmt.blocks(n) * block - n
    if _is_torch(x):
        import torch

        table = _torch_map(table, x)
        flat = torch.nn.functional.pad(x.detach().reshape(-1).float(), (0, pad)).view(-1, block)
        absmax = flat.abs().amax(1) if n else flat.new_zeros(0)
        scaled = (flat / absmax.clamp(min=1e-38)[:, None]).clamp(-1, 1).reshape(-1)[:n]
        codes = torch.searchsorted((table[:-1] + table[1:]) / 2, scaled, right=fmt.ties == "up")
        codes = codes.to(torch.uint8)
    else:
        flat = numpy.pad(numpy.asarray(x, dtype=numpy.float32).reshape(-1), (0, pad)).reshape(-1, block)
        absmax = numpy.abs(flat).max(1) if n else numpy.zeros(0, numpy.float32)
        scaled = numpy.clip(flat / numpy.maximum(absmax, numpy.float32(1e-38))[:, None], -1, 1).reshape(-1)[:n]
        codes = numpy.searchsorted((table[:-1] + table[1:]) / 2, scaled, side="right" if fmt.ties == "up" else "left")
        codes = codes.astype(numpy.uint8)
    if fmt.bits == 4:
        codes = (codes[0::2] << 4) | codes[1::2]
    return codes, absmax


def dequantize(codes, absmax, fmt, shape, *, signed):
    """The float32 values that :func:`quantize` stored, in ``shape``."""
    fmt = STATE_FORMATS[fmt] if isinstance(fmt, str) else fmt
    table = fmt.map(signed)
    n = int(numpy.prod(shape))
    pad = fmt.blocks(n) * fmt.block - n
    if _is_torch(codes):
        import torch

        table = _torch_map(table, codes)
        ints = codes.long()
        if fmt.bits == 4:
            ints = torch.stack([ints >> 4, ints & 15], dim=-1).reshape(-1)
        values = torch.nn.functional.pad(table[ints], (0, pad)).view(-1, fmt.block) * absmax[:, None]
    else:
        ints = codes.astype(numpy.int64)
        if fmt.bits == 4:
            ints = numpy.stack([ints >> 4, ints & 15], axis=-1).reshape(-1)
        values = numpy.pad(table[ints], (0, pad)).reshape(-1, fmt.block) * absmax[:, None]
    return values.reshape(-1)[:n].reshape(shape)


def _numel(x):
    return x.numel() if _is_torch(x) else numpy.size(x)


def _assign(dst, src):
    if _is_torch(dst):
        dst.copy_(src)
    else:
        dst[...] = src


class Quantized(NamedTuple):
    """A quantized moment as a kernel receives it: read with :meth:`value`, written with :meth:`store`
    (codes and scales updated in place)."""

    codes: object
    absmax: object
    fmt: StateFormat
    signed: bool
    shape: tuple

    def value(self):
        return dequantize(self.codes, self.absmax, self.fmt, self.shape, signed=self.signed)

    def store(self, x):
        codes, absmax = quantize(x, self.fmt, signed=self.signed)
        _assign(self.codes, codes)
        _assign(self.absmax, absmax)
        return self


def zeros(shape, fmt, *, like):
    """``(codes, absmax)`` of a zero moment for a tensor of ``shape`` (arrays of ``like``'s kind)."""
    n = int(numpy.prod(shape))
    if _is_torch(like):
        import torch

        return (torch.zeros(fmt.code_bytes(n), dtype=torch.uint8, device=like.device),
                torch.zeros(fmt.blocks(n), dtype=torch.float32, device=like.device))
    return numpy.zeros(fmt.code_bytes(n), numpy.uint8), numpy.zeros(fmt.blocks(n), numpy.float32)
