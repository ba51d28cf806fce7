"""Reading a response body through urllib3 so that nothing incomplete passes for whole: as it
arrives (for the minimum transfer rate), decoded (for the size limit, counted after
decompression), and checked to have reached the end its encoding marks.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

import requests
import urllib3
from urllib3.response import GzipDecoderState

CHUNK = 64 * 1024


class TransferRate:
    """Is a body arriving slower than `minimum` bytes per second over the last `window`
    seconds? Samples of (time, bytes so far) at least a tenth of the window apart."""

    def __init__(self, minimum: float, window: float, start: float) -> None:
        self._minimum = minimum
        self._window = window
        self._samples: deque[tuple[float, int]] = deque([(start, 0)])

    def too_slow(self, now: float, received: int) -> bool:
        if not self._minimum:
            return False
        samples = self._samples
        if now - samples[-1][0] >= self._window / 10:
            samples.append((now, received))
        # The oldest sample kept is the last one at least a window ago.
        while len(samples) > 1 and samples[1][0] <= now - self._window:
            samples.popleft()
        since, base = samples[0]
        elapsed = now - since
        return elapsed >= self._window and received - base < self._minimum * elapsed


def arriving(raw: requests.Response) -> Iterator[bytes]:
    """The decoded body as it arrives: each chunk is what one read of the socket brought, so
    the caller sees a trickle as it trickles (requests' iter_content waits for a whole chunk).
    urllib3's errors become requests' ones, as iter_content would raise them."""
    stream = raw.raw
    errors = requests.exceptions
    try:
        while chunk := stream.read1(CHUNK, decode_content=True):
            yield chunk
    except urllib3.exceptions.ProtocolError as exc:
        raise errors.ChunkedEncodingError(exc) from None
    except urllib3.exceptions.DecodeError as exc:
        raise errors.ContentDecodingError(exc) from None
    except urllib3.exceptions.ReadTimeoutError as exc:
        raise errors.ConnectionError(exc) from None
    except urllib3.exceptions.SSLError as exc:
        raise errors.SSLError(exc) from None


def drain(raw: requests.Response, limit: int = 65536) -> None:
    """Read a small unwanted body (redirect, error page) so its connection can be reused;
    closing a response with unread bytes would drop the connection."""
    try:
        for read, _ in enumerate(raw.iter_content(CHUNK)):
            if (read + 1) * CHUNK >= limit:
                break
    except requests.exceptions.RequestException:
        pass


def decoded_to_the_end(raw: requests.Response) -> bool:
    """Did a compressed body (Content-Encoding gzip, deflate, br) reach the end its format
    marks? When the connection closes where Content-Length says the body ends, urllib3 hands
    out the prefix it could decode and never says the stream stopped early: its decoder is
    asked here. Nothing on the wire (an empty body) is whole."""
    wire = raw.raw
    return wire is None or not wire.tell() or _decoder_finished(getattr(wire, "_decoder", None))


def _decoder_finished(decoder: object) -> bool:
    """urllib3's decoders: MultiDecoder ("gzip, br") holds several; GzipDecoder, DeflateDecoder
    and ZstdDecoder a decompressor with `eof`; BrotliDecoder one with `is_finished()`."""
    if decoder is None:
        return True
    parts = getattr(decoder, "_decoders", None)
    if parts is not None:
        return all(_decoder_finished(part) for part in parts)
    if getattr(decoder, "_state", None) == GzipDecoderState.SWALLOW_DATA:
        return True  # bytes after a whole gzip member, ignored as browsers do
    stream = getattr(decoder, "_obj", None)
    if hasattr(stream, "is_finished"):
        return bool(stream.is_finished())
    return bool(getattr(stream, "eof", True))
