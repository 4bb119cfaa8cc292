"""msgpack encoding with numpy arrays, used by the policy server and its client.

``pack(obj) -> bytes`` and ``unpack(data) -> obj`` handle nested dicts, lists and tuples (tuples come
back as lists) of ``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``, numpy arrays and numpy
scalars. Anything else raises :class:`WireError` naming the type and where in the message it is.

Numpy values travel as msgpack extension types whose payload is the msgpack array
``[dtype.str, shape, raw bytes]`` (C order, the dtype string keeps the byte order):

* ext ``1``: an ``ndarray`` (any shape, including 0-d); decoded as a writable, C-contiguous array.
* ext ``2``: a numpy scalar (``np.float32(1)``, ``np.bool_(True)``); decoded as a numpy scalar.

Object, structured and void dtypes are refused. Dict keys may be strings or integers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import msgpack
import numpy as np

__all__ = ["WireError", "pack", "unpack", "EXT_NDARRAY", "EXT_NPSCALAR"]

EXT_NDARRAY = 1
EXT_NPSCALAR = 2
_ALLOWED_KINDS = frozenset("biufcSUmM")  # bool, ints, floats, complex, bytes, str, timedelta, datetime


class WireError(ValueError):
    """A value cannot be encoded, or bytes are not a valid message."""


class _Unsupported(Exception):
    def __init__(self, obj: Any, reason: str) -> None:
        super().__init__(reason)
        self.obj = obj
        self.reason = reason


def _array_payload(arr: np.ndarray) -> bytes:
    if arr.dtype.kind not in _ALLOWED_KINDS:
        raise _Unsupported(arr, f"numpy dtype {arr.dtype} (kind {arr.dtype.kind!r}) is not supported")
    return msgpack.packb([arr.dtype.str, list(arr.shape), arr.tobytes(order="C")], use_bin_type=True)


def _default(obj: Any) -> Any:
    """Called by msgpack for every value it does not pack itself (``strict_types``: subclasses too)."""
    if isinstance(obj, np.generic):
        return msgpack.ExtType(EXT_NPSCALAR, _array_payload(np.asarray(obj)))
    if isinstance(obj, np.ndarray):
        return msgpack.ExtType(EXT_NDARRAY, _array_payload(np.asarray(obj)))
    if isinstance(obj, int):  # IntEnum and other int subclasses
        return int(obj)
    if isinstance(obj, float):
        return float(obj)
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj)
    if isinstance(obj, (list, tuple)):
        return list(obj)
    if isinstance(obj, Mapping):
        return dict(obj)
    raise _Unsupported(
        obj,
        f"cannot encode a value of type {type(obj).__module__}.{type(obj).__qualname__}; supported: "
        "dict, list, tuple, str, bytes, int, float, bool, None, numpy arrays and numpy scalars",
    )


def _locate(root: Any, target: Any) -> str | None:
    """The path of ``target`` (by identity) inside ``root``, like ``['obs'][0]['x']``."""
    stack: list[tuple[Any, str]] = [(root, "")]
    seen: set[int] = set()
    while stack:
        node, path = stack.pop()
        if node is target:
            return path or "<top level>"
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, Mapping):
            stack.extend((v, f"{path}[{k!r}]") for k, v in node.items())
            stack.extend((k, f"{path}<key {k!r}>") for k in node)
        elif isinstance(node, (list, tuple)):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(node))
    return None


def pack(obj: Any) -> bytes:
    """Encode ``obj`` as msgpack bytes; raises :class:`WireError` for values that cannot travel."""
    try:
        return msgpack.packb(obj, default=_default, use_bin_type=True, strict_types=True)
    except _Unsupported as exc:
        where = _locate(obj, exc.obj)
        raise WireError(f"{exc.reason} (at {where})" if where else exc.reason) from None
    except OverflowError as exc:
        raise WireError(f"cannot encode: integer out of the 64-bit range ({exc})") from None
    except ValueError as exc:  # e.g. "recursion limit exceeded" for deeply nested or cyclic data
        raise WireError(f"cannot encode: {exc}") from None


def _decode_array(data: bytes) -> np.ndarray:
    try:
        dtype_str, shape, raw = msgpack.unpackb(data, raw=False, use_list=True)
    except Exception as exc:
        raise WireError(f"bad numpy payload: {exc}") from None
    try:
        dtype = np.dtype(dtype_str)
    except (TypeError, ValueError) as exc:
        raise WireError(f"bad numpy dtype {dtype_str!r}: {exc}") from None
    if dtype.kind not in _ALLOWED_KINDS or dtype.hasobject:
        raise WireError(f"numpy dtype {dtype} is not allowed on the wire")
    if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape):
        raise WireError(f"bad numpy shape {shape!r}")
    if not isinstance(raw, bytes):
        raise WireError("bad numpy payload: data is not bytes")
    count = math.prod(shape)
    if count * dtype.itemsize != len(raw):
        raise WireError(
            f"numpy payload holds {len(raw)} bytes, but shape {tuple(shape)} of {dtype} needs "
            f"{count * dtype.itemsize}"
        )
    return np.frombuffer(bytearray(raw), dtype=dtype, count=count).reshape(tuple(shape))


def _ext_hook(code: int, data: bytes) -> Any:
    if code == EXT_NDARRAY:
        return _decode_array(data)
    if code == EXT_NPSCALAR:
        arr = _decode_array(data)
        if arr.shape != ():
            raise WireError(f"numpy scalar payload has shape {arr.shape}")
        return arr[()]
    raise WireError(f"unknown msgpack extension type {code}")


def unpack(data: bytes | bytearray | memoryview) -> Any:
    """Decode bytes made by :func:`pack`; raises :class:`WireError` for anything malformed."""
    if isinstance(data, str):
        raise WireError("expected a binary msgpack message, got text")
    try:
        return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False, use_list=True)
    except WireError:
        raise
    except Exception as exc:  # msgpack's ExtraData, FormatError, StackError, UnicodeDecodeError, ...
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise WireError(f"not a valid msgpack message ({detail})") from None
