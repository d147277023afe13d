"""Compression of large L2 values (the ``zstd`` and ``lz4`` extras): transparent to readers.

A value whose serialized form is at least ``min_bytes`` long is written as::

    b"z" + a zstd frame    (zstandard, level 3)
    b"l" + an lz4 frame    (lz4.frame)

around the serializer's bytes (which keep their own format tag inside), and only if
that is shorter. Every reader decompresses whatever its own setting, when the package
is installed (otherwise the value is unreadable: counted, and a miss), so a namespace
can turn compression on or off without a flush. A frame must state its content size,
and one that claims more than :data:`MAX_VALUE_BYTES` (Redis's largest value) is
refused before anything is allocated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from otel_cache.errors import CacheConfigError, SerializationError

__all__ = [
    "COMPRESSED_TAGS",
    "MAX_VALUE_BYTES",
    "Compression",
    "CompressionName",
    "Compressor",
    "decompress",
    "make_compression",
]

CompressionName = Literal["zstd", "lz4"]
ZSTD, LZ4 = b"zl"
COMPRESSED_TAGS = frozenset({ZSTD, LZ4})
MAX_VALUE_BYTES = 512 * 1024 * 1024


class Compressor(Protocol):
    """One codec: its name, its one-byte tag, and both directions."""

    name: str
    tag: int

    def compress(self, data: bytes) -> bytes: ...

    def decompress(self, frame: bytes) -> bytes: ...


class _Zstd:
    name = "zstd"
    tag = ZSTD

    def __init__(self, module: Any) -> None:
        self._module = module
        self._level = 3

    def compress(self, data: bytes) -> bytes:
        # A compressor object is not thread-safe: one per call (cheap next to the value it packs).
        packed: bytes = self._module.ZstdCompressor(level=self._level, write_content_size=True).compress(data)
        return packed

    def decompress(self, frame: bytes) -> bytes:
        size = self._module.frame_content_size(frame)
        if size < 0 or size > MAX_VALUE_BYTES:  # -1: unknown size (not ours)
            raise SerializationError("refusing a zstd frame of unknown or excessive size")
        data: bytes = self._module.ZstdDecompressor().decompress(frame, max_output_size=size)
        return data


class _Lz4:
    name = "lz4"
    tag = LZ4

    def __init__(self, module: Any) -> None:
        self._frame = module

    def compress(self, data: bytes) -> bytes:
        packed: bytes = self._frame.compress(data, store_size=True)
        return packed

    def decompress(self, frame: bytes) -> bytes:
        size = self._frame.get_frame_info(frame).get("content_size", 0)
        if not size or size > MAX_VALUE_BYTES:
            raise SerializationError("refusing an lz4 frame of unknown or excessive size")
        data: bytes = self._frame.decompress(frame)
        return data


@dataclass(slots=True)
class Compression:
    """A writer's compression: the codec and the size from which a value is compressed."""

    compressor: Compressor
    min_bytes: int = 1024

    def __post_init__(self) -> None:
        if isinstance(self.min_bytes, bool) or not isinstance(self.min_bytes, int) or self.min_bytes < 1:
            raise CacheConfigError(f"compression min_bytes must be a positive int, got {self.min_bytes!r}")

    def pack(self, data: bytes) -> bytes | None:
        """``data`` compressed with its tag, or None when it is too small or would not shrink."""
        if len(data) < self.min_bytes:
            return None
        packed = bytes([self.compressor.tag]) + self.compressor.compress(data)
        return packed if len(packed) < len(data) else None


def make_compression(name: CompressionName | str, min_bytes: int = 1024) -> Compression:
    """The compression called ``name`` (``zstd`` or ``lz4``); CacheConfigError if its extra is missing."""
    if name not in ("zstd", "lz4"):
        raise CacheConfigError(f"compression must be 'zstd' or 'lz4', got {name!r}")
    module = _import(name)
    if module is None:
        raise CacheConfigError(f"{name} compression needs `pip install otel-cache[{name}]`")
    return Compression(_Zstd(module) if name == "zstd" else _Lz4(module), min_bytes)


def decompress(tag: int, frame: bytes) -> bytes:
    """The bytes inside a compressed value; SerializationError if its codec is not installed."""
    name = "zstd" if tag == ZSTD else "lz4"
    module = _import(name)
    if module is None:
        raise SerializationError(f"a stored value is {name}-compressed and {name} is not installed")
    return (_Zstd(module) if tag == ZSTD else _Lz4(module)).decompress(frame)


def _import(name: str) -> Any:
    try:
        if name == "zstd":
            import zstandard

            return zstandard
        import lz4.frame

        return lz4.frame
    except ImportError:
        return None
