"""Decoding perf ring bytes into records: pure functions over a byte span, no kernel needed.

A perf ring holds ``perf_event_header``-framed records: ``PERF_RECORD_SAMPLE`` (u32 raw size,
then the raw bytes padded so the record stays 8-byte aligned) and ``PERF_RECORD_LOST`` (how many
samples did not fit). Fixed-size samples are cut out with two numpy operations per span (a
strided read of all headers, one strided copy of the payloads); a few samples are cheaper with
``struct``; variable-size samples come back as a :class:`~bpfkit.events.RawBatch`.

Example::

    stride = sample_size(dt.itemsize)
    batch, used, lost, other = decode_fixed(span, dt, None, "pevents")
"""
from __future__ import annotations

import struct
from typing import Optional

import numpy as np

from .. import _sys as sc
from ..errors import BpfError, BpfUsageError
from .batch import RawBatch, concat_records, gather_fixed, strided_words

__all__ = ["EVENT_HDR", "SAMPLE_HDR", "sample_size", "decode_small", "decode_fixed", "decode_raw", "header",
           "lost_count", "same_size_samples"]

EVENT_HDR = 8     # struct perf_event_header {u32 type; u16 misc; u16 size;}
SAMPLE_HDR = EVENT_HDR + 4  # + u32 raw size
_HEADER = struct.Struct("<IHH")
# perf_event_header read as one u64: type | misc << 32 | size << 48; misc is ignored
_TYPE_AND_SIZE = np.uint64(0xFFFF0000FFFFFFFF)


def sample_size(payload: int) -> int:
    """Size of the PERF_RECORD_SAMPLE carrying ``payload`` raw bytes (the kernel pads raw data so
    that u32 size + data is a multiple of 8).

    Example::

        sample_size(24)   # 40
    """
    return EVENT_HDR + ((payload + 4 + 7) & ~7)


def decode_small(data: memoryview, off: int, span: int, stride: int, dt: np.dtype,
                 max_records: Optional[int]) -> Optional[np.ndarray]:
    """The few samples in ``data[off: off + span]`` decoded with struct, or None if the span is not
    made only of whole samples of ``stride`` bytes (the caller then takes :func:`decode_fixed`,
    which handles every case). ``span`` must not wrap around the ring.

    Example::

        decode_small(ring.dmv, tail & ring.mask, head - tail, sample_size(16), dt, None)
    """
    count, rest = divmod(span, stride)
    if rest:
        return None
    if max_records is not None and count > max_records:
        count = max_records
    unpack = _HEADER.unpack_from
    want = (sc.PERF_RECORD_SAMPLE, stride)
    isz = dt.itemsize
    out = bytearray()
    for pos in range(off, off + count * stride, stride):
        rtype, _misc, size = unpack(data, pos)
        if (rtype, size) != want:
            return None  # checked like the vectorized path: type and size, misc ignored
        out += data[pos + SAMPLE_HDR: pos + SAMPLE_HDR + isz]
    return np.frombuffer(out, dtype=dt)  # writable, owns its copy


def decode_fixed(buf: np.ndarray, dt: np.dtype, max_records: Optional[int], name: str,
                 have_earlier: bool = False) -> tuple[np.ndarray, int, int, int]:
    """(samples, bytes used, samples reported lost, other records) from the start of ``buf``
    (uint8). A sample smaller than ``dt`` ends the span; it raises BpfUsageError when it is the
    first thing read (``have_earlier`` False and nothing decoded before it), so that the records
    before it can be handed out first.

    Example::

        batch, used, lost, other = decode_fixed(np.frombuffer(raw, np.uint8), dt, None, "pevents")
    """
    isz = dt.itemsize
    stride = sample_size(isz)
    total = buf.size
    parts: list[np.ndarray] = []
    got = pos = lost = other = 0
    want = np.uint64(stride << 48 | sc.PERF_RECORD_SAMPLE)
    while pos < total and (max_records is None or got < max_records):
        n = (total - pos) // stride
        if max_records is not None:
            n = min(n, max_records - got)
        k = 0
        if n:
            ok = (strided_words(buf, pos, n, stride) & _TYPE_AND_SIZE) == want
            k = n if ok.all() else int(np.argmin(ok))
            if k:
                parts.append(gather_fixed(buf, pos, k, stride, SAMPLE_HDR, dt))  # never a view
                got += k
                pos += k * stride
        if k == n and n:
            continue
        if pos + EVENT_HDR > total:
            break  # a header cut by the caller's chunk limit
        rtype, size = header(buf, pos, name)
        if pos + size > total:
            break  # cut by the caller's chunk limit: read with the next chunk
        if rtype == sc.PERF_RECORD_SAMPLE:
            raw = int(buf[pos + EVENT_HDR: pos + SAMPLE_HDR].view(np.uint32)[0])
            if raw < isz:
                if parts or have_earlier:
                    break  # hand over what we have; the next drain meets this sample first
                raise BpfUsageError(
                    f"perf buffer {name!r}: a sample of {raw} bytes is smaller than the {isz}-byte "
                    f"dtype {dt}; it stays in the ring: read it with drain_raw(), or pass the right dtype")
            # bigger than the dtype (padding or a longer struct): decode its leading bytes
            parts.append(buf[pos + SAMPLE_HDR: pos + SAMPLE_HDR + isz].copy().view(dt))
            got += 1
        elif rtype == sc.PERF_RECORD_LOST:
            lost += lost_count(buf, pos)
        else:
            other += 1
        pos += size
    batch = np.empty(0, dtype=dt) if not parts else parts[0] if len(parts) == 1 else concat_records(parts)
    return batch, pos, lost, other


def decode_raw(buf: np.ndarray, max_records: Optional[int], name: str) -> tuple[RawBatch, int, int, int]:
    """(samples of any size, bytes used, samples reported lost, other records) from ``buf``.
    Runs of samples of one size (what a program sending one struct writes) are checked and cut
    out vectorised, as :func:`decode_fixed` does; only samples of differing sizes are walked.

    Example::

        batch, used, lost, other = decode_raw(np.frombuffer(raw, np.uint8), None, "pevents")
    """
    mv = buf.data
    parts: list[RawBatch] = []
    chunks: list[bytes] = []
    pos, total = 0, buf.size
    got = lost = other = 0
    while pos + EVENT_HDR <= total and (max_records is None or got < max_records):
        rtype, size = header(buf, pos, name)
        if pos + size > total:
            break
        if rtype == sc.PERF_RECORD_SAMPLE:
            n = (total - pos) // size
            if max_records is not None:
                n = min(n, max_records - got)
            k = same_size_samples(buf, pos, n, size) if n >= RUN else 0
            if k >= RUN:
                if chunks:
                    parts.append(RawBatch.from_chunks(chunks))
                    chunks = []
                (raw,) = struct.unpack_from("<I", mv, pos + EVENT_HDR)
                block = gather_fixed(buf, pos, k, size, SAMPLE_HDR, np.dtype(f"V{raw}"))
                parts.append(RawBatch.fixed(block.view(np.uint8), raw, k))
                got += k
                pos += k * size
                continue
            (raw,) = struct.unpack_from("<I", mv, pos + EVENT_HDR)
            chunks.append(bytes(mv[pos + SAMPLE_HDR: pos + SAMPLE_HDR + raw]))
            got += 1
        elif rtype == sc.PERF_RECORD_LOST:
            lost += lost_count(buf, pos)
        else:
            other += 1
        pos += size
    if chunks:
        parts.append(RawBatch.from_chunks(chunks))
    return RawBatch.concat(parts), pos, lost, other


# same-size samples in a row that are cut out as one block
RUN = 8


def same_size_samples(buf: np.ndarray, pos: int, n: int, size: int) -> int:
    """How many of the ``n`` records from ``pos``, ``size`` bytes apart, are samples of ``size``
    bytes with the same raw size as the first, before the first that is not.

    Example::

        same_size_samples(buf, 0, 64, sample_size(24))   # 64 if all are 24-byte samples
    """
    ok = (strided_words(buf, pos, n, size) & _TYPE_AND_SIZE) == np.uint64(size << 48 | sc.PERF_RECORD_SAMPLE)
    k = n if ok.all() else int(np.argmin(ok))
    if k > 1:
        raws = strided_words(buf, pos, k, size, "<u4", EVENT_HDR)
        same = raws == raws[0]
        k = k if same.all() else int(np.argmin(same))
    return k


def header(buf: np.ndarray, pos: int, name: str = "") -> tuple[int, int]:
    """(record type, size) of the record at ``pos``; BpfError for a corrupt header.

    Example::

        header(buf, 0)   # (9, 40): PERF_RECORD_SAMPLE of 40 bytes
    """
    if pos + EVENT_HDR > buf.size:
        raise BpfError(f"perf buffer {name!r}: truncated record header at {pos}")
    rtype, _misc, size = _HEADER.unpack_from(buf.data, pos)
    if size < EVENT_HDR:
        raise BpfError(f"perf buffer {name!r}: corrupt record header at {pos} (size {size})")
    return rtype, size


def lost_count(buf: np.ndarray, pos: int) -> int:
    """How many samples the PERF_RECORD_LOST at ``pos`` reports (after its u64 id).

    Example::

        lost_count(buf, pos)   # e.g. 12
    """
    (lost,) = struct.unpack_from("<Q", buf.data, pos + EVENT_HDR + 8)
    return int(lost)
