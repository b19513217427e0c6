"""The safetensors file format: a streaming writer that records a :class:`Digest` as it
hashes, and a header reader that validates before anything is read (and never unpickles).

Whole-file loads decode with ``safetensors.torch.load``; see "File format" and "Verification"
in ``docs/checkpoints.md``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Final

import safetensors.torch
import torch

from epochstore.errors import CheckpointFormatError, CorruptCheckpointError

if TYPE_CHECKING:
    from typing import BinaryIO

__all__ = [
    "CHUNK_SIZE",
    "MAX_HEADER_SIZE",
    "Digest",
    "Header",
    "TensorEntry",
    "read_header",
    "read_tensors",
    "section_of",
    "write_safetensors",
]

#: Largest header accepted (the limit of the reference implementation).
MAX_HEADER_SIZE: Final = 100_000_000

_DTYPES: Final[dict[str, torch.dtype]] = {
    "BOOL": torch.bool,
    "U8": torch.uint8,
    "I8": torch.int8,
    "I16": torch.int16,
    "I32": torch.int32,
    "I64": torch.int64,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "F32": torch.float32,
    "F64": torch.float64,
    "C64": torch.complex64,
    "F8_E4M3": torch.float8_e4m3fn,
    "F8_E5M2": torch.float8_e5m2,
}
for _name, _attr in (("U16", "uint16"), ("U32", "uint32"), ("U64", "uint64")):
    if hasattr(torch, _attr):  # torch >= 2.3
        _DTYPES[_name] = getattr(torch, _attr)
_DTYPE_NAMES: Final = {dtype: name for name, dtype in _DTYPES.items()}
_MAX_DIMS: Final = 64
_DIGEST_FIELDS: Final = ("size", "sha256", "header_sha256", "sections")


def section_of(name: str) -> str:
    """Return the section of a tensor name: its first dot-separated component."""
    return name.split(".", 1)[0]


@dataclass(frozen=True)
class TensorEntry:
    """One tensor of a header: dtype name, shape and byte range relative to the data start."""

    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


@dataclass(frozen=True)
class Header:
    """A validated safetensors header."""

    length: int
    tensors: Mapping[str, TensorEntry]
    metadata: Mapping[str, str]
    raw: bytes = field(repr=False)

    @property
    def data_start(self) -> int:
        """Byte offset of the tensor data in the file."""
        return 8 + self.length


@dataclass(frozen=True)
class Digest:
    """What a writer recorded about a file: enough to verify all of it or one section.

    Attributes
    ----------
    size
        File size in bytes.
    sha256
        Hex sha256 of the whole file.
    header_sha256
        Hex sha256 of the 8-byte length and the JSON header.
    sections
        Section name -> hex sha256 of the bytes of its tensors, in file order.
    """

    size: int
    sha256: str
    header_sha256: str
    sections: Mapping[str, str]

    def to_json(self) -> dict[str, Any]:
        """Return the JSON object stored in manifests and version records."""
        return {**asdict(self), "sections": dict(self.sections)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str) -> Digest:
        """Build from :meth:`to_json` output; ``where`` names the record in error messages."""
        try:
            size, sha, header_sha, sections = (data[k] for k in _DIGEST_FIELDS)
        except KeyError as exc:
            raise CheckpointFormatError(f"{where}: missing field {exc.args[0]!r}") from None
        if (
            isinstance(size, bool)
            or not isinstance(size, int)
            or not all(_is_hex_digest(value) for value in (sha, header_sha))
            or not isinstance(sections, dict)
            or not all(isinstance(k, str) and _is_hex_digest(v) for k, v in sections.items())
        ):
            raise CheckpointFormatError(
                f"{where}: size must be an integer and sha256 values 64 hex digits"
            )
        return cls(size=size, sha256=sha, header_sha256=header_sha, sections=dict(sections))


#: Bytes read at a time when a whole file is copied.
CHUNK_SIZE: Final = 8 << 20


def _is_hex_digest(value: object) -> bool:
    return isinstance(value, str) and re.fullmatch("[0-9a-f]{64}", value) is not None


# --- writing -------------------------------------------------------------------------------------


def _validate(name: str, tensor: torch.Tensor) -> torch.Tensor:
    if tensor.layout != torch.strided or tensor.is_quantized:
        raise TypeError(
            f"{name!r}: only dense tensors can be stored in safetensors, got layout "
            f"{tensor.layout}; convert it with .to_dense() or .dequantize() first"
        )
    if tensor.dtype not in _DTYPE_NAMES:
        raise TypeError(
            f"{name!r}: dtype {tensor.dtype} has no safetensors equivalent; "
            f"supported: {sorted(str(d) for d in _DTYPE_NAMES)}"
        )
    if tensor.device.type == "meta":
        raise TypeError(f"{name!r}: a tensor on the meta device has no data to store")
    return tensor


def write_safetensors(
    handle: BinaryIO, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]
) -> Digest:
    """Stream ``tensors`` (from :func:`~.layout.pack`, deduplicated) and ``metadata`` to
    ``handle``, one tensor at a time on the CPU; return the :class:`Digest` of what was written."""
    entries = sorted(
        ((name, _validate(name, tensor)) for name, tensor in tensors.items()),
        key=lambda item: (-item[1].element_size(), item[0]),
    )
    header: dict[str, Any] = {"__metadata__": dict(metadata)} if metadata else {}
    offset = 0
    for name, tensor in entries:
        nbytes = tensor.numel() * tensor.element_size()
        header[name] = {
            "dtype": _DTYPE_NAMES[tensor.dtype],
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)  # 8-byte alignment of the data, as the reference writer does
    head = len(raw).to_bytes(8, "little") + raw

    file_hash = hashlib.sha256(head)
    sections: dict[str, Any] = {}
    handle.write(head)
    for name, tensor in entries:
        cpu = tensor.detach().to("cpu").contiguous()
        data = cpu.reshape(-1).view(torch.uint8).numpy().data
        handle.write(data)
        file_hash.update(data)
        sections.setdefault(section_of(name), hashlib.sha256()).update(data)
    return Digest(
        size=len(head) + offset,
        sha256=file_hash.hexdigest(),
        header_sha256=hashlib.sha256(head).hexdigest(),
        sections={name: h.hexdigest() for name, h in sorted(sections.items())},
    )


# --- reading -------------------------------------------------------------------------------------


def _read_exact(handle: BinaryIO, size: int, path: str) -> bytearray:
    buffer = bytearray(size)
    view = memoryview(buffer)
    reader: Any = handle  # typing.BinaryIO lacks readinto, which real binary files have
    done = 0
    while done < size:
        count = reader.readinto(view[done:])
        if not count:
            raise CorruptCheckpointError(
                f"{path}: file ended after {done} of {size} expected bytes (truncated while "
                f"being read?)"
            )
        done += count
    return buffer


def _sniff(prefix: bytes) -> str:
    if prefix[:1] == b"\x80":
        return " It looks like a Python pickle (torch.save's legacy format)."
    if prefix[:4] == b"PK\x03\x04":
        return " It looks like a zip archive (torch.save's default format)."
    return ""


def _not_safetensors(path: str, reason: str, prefix: bytes = b"") -> CheckpointFormatError:
    return CheckpointFormatError(
        f"{path} is not a valid safetensors file: {reason}.{_sniff(prefix)} It was refused "
        f"without being unpickled or executed; epochstore only loads safetensors checkpoints "
        f"that it wrote."
    )


def _parse_entry(path: str, name: str, value: object) -> TensorEntry:
    if not isinstance(value, dict) or set(value) != {"dtype", "shape", "data_offsets"}:
        raise _not_safetensors(path, f"tensor {name!r} must have dtype, shape and data_offsets")
    dtype, shape, offsets = value["dtype"], value["shape"], value["data_offsets"]
    if dtype not in _DTYPES:
        raise _not_safetensors(path, f"tensor {name!r} has unsupported dtype {dtype!r}")
    if (
        not isinstance(shape, list)
        or len(shape) > _MAX_DIMS
        or not all(type(dim) is int and dim >= 0 for dim in shape)
    ):
        raise _not_safetensors(path, f"tensor {name!r} has an invalid shape {shape!r}")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(type(o) is int for o in offsets)
        or not 0 <= offsets[0] <= offsets[1]
    ):
        raise _not_safetensors(path, f"tensor {name!r} has invalid data_offsets {offsets!r}")
    if math.prod(shape) * _DTYPES[dtype].itemsize != offsets[1] - offsets[0]:
        raise _not_safetensors(path, f"tensor {name!r}: byte size does not match its shape")
    return TensorEntry(dtype=dtype, shape=tuple(shape), begin=offsets[0], end=offsets[1])


def read_header(handle: BinaryIO, file_size: int, path: str) -> Header:
    """Read and validate the header at the start of ``handle`` ("Safety" in
    ``docs/checkpoints.md``); a file that fails raises :class:`CheckpointFormatError`."""
    if file_size < 8:
        raise _not_safetensors(path, f"{file_size} bytes is shorter than the 8-byte length")
    prefix = bytes(_read_exact(handle, 8, path))
    length = int.from_bytes(prefix, "little")
    if not 2 <= length <= min(MAX_HEADER_SIZE, file_size - 8):
        raise _not_safetensors(
            path, f"header length {length} does not fit a file of {file_size} bytes", prefix
        )
    first = bytes(_read_exact(handle, 1, path))
    if first != b"{":  # refuse before reading a large "header"; JSON from "{" is an object
        raise _not_safetensors(path, "the header is not a JSON object", prefix)
    raw = first + bytes(_read_exact(handle, length - 1, path))
    try:
        parsed = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _not_safetensors(path, "the header is not valid UTF-8 JSON", prefix) from None
    metadata = parsed.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise _not_safetensors(path, "__metadata__ must map strings to strings")
    entries = {name: _parse_entry(path, name, value) for name, value in parsed.items()}
    ordered = sorted(entries.items(), key=lambda item: (item[1].begin, item[1].end))
    expected = 0
    for name, entry in ordered:
        if entry.begin != expected:
            raise _not_safetensors(path, f"tensor {name!r} does not start where the previous ends")
        expected = entry.end
    if expected != file_size - 8 - length:
        raise _not_safetensors(
            path,
            f"the tensors cover {expected} bytes but the file holds "
            f"{file_size - 8 - length} after the header",
        )
    return Header(length=length, tensors=dict(ordered), metadata=metadata, raw=prefix + raw)


def _tensor(buffer: bytearray, entry: TensorEntry) -> torch.Tensor:
    dtype = _DTYPES[entry.dtype]
    if not buffer:
        return torch.empty(entry.shape, dtype=dtype)
    return torch.frombuffer(buffer, dtype=dtype).reshape(entry.shape)


def _check(path: str, what: str, actual: str, expected: str) -> None:
    if actual != expected:
        raise CorruptCheckpointError(
            f"{path}: {what} sha256 is {actual}, but {expected} was recorded when it was "
            f"written; the file or its record was changed, so it is not loaded: restore them "
            f"from a backup or load another epoch"
        )


def read_tensors(
    handle: BinaryIO,
    header: Header,
    path: str,
    digest: Digest,
    sections: Collection[str] | None = None,
) -> dict[str, torch.Tensor]:
    """Read the whole file (``sections=None``) or only the header and the named sections, each
    verified against ``digest``; a mismatch raises :class:`CorruptCheckpointError`."""
    _check(path, "header", hashlib.sha256(header.raw).hexdigest(), digest.header_sha256)
    if sections is None:  # hash the bytes once and let safetensors decode exactly those
        handle.seek(0)
        data = handle.read()
        _check(path, "file", hashlib.sha256(data).hexdigest(), digest.sha256)
        return safetensors.torch.load(data)
    buffers: dict[str, bytearray] = {}
    hashes: dict[str, Any] = {}
    for name, entry in header.tensors.items():
        if (section := section_of(name)) in sections:
            handle.seek(header.data_start + entry.begin)
            buffers[name] = buffer = _read_exact(handle, entry.end - entry.begin, path)
            hashes.setdefault(section, hashlib.sha256()).update(buffer)
    for section, section_hash in hashes.items():
        recorded = digest.sections.get(section, "no checksum")
        _check(path, f"section {section!r}", section_hash.hexdigest(), recorded)
    return {name: _tensor(buffer, header.tensors[name]) for name, buffer in buffers.items()}
