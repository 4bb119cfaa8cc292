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

__all__ = [
    "EXT_NDARRAY",
    "EXT_NPSCALAR",
    "OPENPI_KEYS",
    "WireError",
    "from_openpi",
    "pack",
    "pack_openpi",
    "to_openpi",
    "unpack",
]

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
    return _array_from(dtype_str, shape, raw)


def _array_from(dtype_str: Any, shape: Any, raw: Any) -> np.ndarray:
    """A checked, writable array of ``raw`` bytes with that dtype and shape."""
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


# --- openpi's format -------------------------------------------------------------------------------
# openpi's websocket policies (the ``openpi-client`` package) send numpy values as plain msgpack maps:
# ``{b"__ndarray__": True, b"data": raw bytes, b"dtype": dtype.str, b"shape": [...]}`` and
# ``{b"__npgeneric__": True, b"data": value, b"dtype": dtype.str}``. No extension types, no pickle.


def _openpi_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray) and obj.dtype.kind in _ALLOWED_KINDS and not obj.dtype.hasobject:
        arr = np.ascontiguousarray(obj)
        return {
            b"__ndarray__": True,
            b"data": arr.tobytes(),
            b"dtype": arr.dtype.str,
            b"shape": list(arr.shape),
        }
    if isinstance(obj, np.generic) and obj.dtype.kind in _ALLOWED_KINDS:
        return {b"__npgeneric__": True, b"data": obj.item(), b"dtype": obj.dtype.str}
    raise WireError(f"cannot encode a {type(obj).__name__} in openpi's format")


def _openpi_hook(obj: dict) -> Any:
    if b"__ndarray__" in obj:
        return _array_from(obj.get(b"dtype"), obj.get(b"shape"), obj.get(b"data"))
    if b"__npgeneric__" in obj:
        return _array_from(obj.get(b"dtype"), [], _openpi_scalar_bytes(obj))[()]
    return obj


def _openpi_scalar_bytes(obj: dict) -> bytes:
    try:
        return np.asarray(obj[b"data"], dtype=np.dtype(obj[b"dtype"])).tobytes()
    except (KeyError, TypeError, ValueError) as exc:
        raise WireError(f"bad numpy scalar: {exc}") from None


def pack_openpi(obj: Any) -> bytes:
    """Encode ``obj`` in openpi's msgpack format; raises :class:`WireError`."""
    try:
        return msgpack.packb(obj, default=_openpi_default, use_bin_type=True)
    except (OverflowError, ValueError) as exc:
        raise WireError(f"cannot encode: {exc}") from None


#: Our observation keys -> openpi's (both directions; other keys K travel as ``observation/K``).
OPENPI_KEYS = {
    "rgb_static": "observation/image",
    "rgb_gripper": "observation/wrist_image",
    "robot_obs": "observation/state",
}


def to_openpi(obs: Mapping[str, Any], prompt: str) -> dict[str, Any]:
    """An openpi request from one of our observations and its instruction."""
    return {**{OPENPI_KEYS.get(k, f"observation/{k}"): v for k, v in obs.items()}, "prompt": prompt}


def from_openpi(request: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """(our observation, the prompt) of an openpi request."""
    ours = {v: k for k, v in OPENPI_KEYS.items()}
    obs = {ours.get(k, k.removeprefix("observation/")): v for k, v in request.items() if k != "prompt"}
    prompt = request.get("prompt")
    return obs, prompt if isinstance(prompt, str) else None


def unpack(data: bytes | bytearray | memoryview, *, openpi: bool = False) -> Any:
    """Decode bytes made by :func:`pack` (or, with ``openpi``, by :func:`pack_openpi` or openpi's
    own packer); raises :class:`WireError` for anything malformed."""
    if isinstance(data, str):
        raise WireError("expected a binary msgpack message, got text")
    hooks = {"object_hook": _openpi_hook} if openpi else {"ext_hook": _ext_hook}
    try:
        return msgpack.unpackb(data, **hooks, raw=False, strict_map_key=False, use_list=True)
    except WireError:
        raise
    except Exception as exc:  # msgpack's ExtraData, FormatError, StackError, UnicodeDecodeError, ...
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise WireError(f"not a valid msgpack message ({detail})") from None
