"""A separate audio file (CREMA-D's AudioWAV/*.wav) decoded to mono float32 at a given rate, with PyAV."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from cfnsr.data.media import MediaError


def decode_audio_file(path: str | Path, sample_rate: int) -> np.ndarray:
    """``path`` -> float32 (N,) mono at ``sample_rate`` (channels averaged), from the file's start.

    Raises ``MediaError`` (message starts with the file name) when the file has no audio stream or cannot be read.
    """
    path = Path(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise MediaError(f"{path.name}: no audio stream")
            stream = container.streams.audio[0]
            # fltp keeps channels apart (planar), so they can be averaged to mono after resampling
            resampler = av.AudioResampler(format="fltp", rate=sample_rate)
            chunks: list[np.ndarray] = []
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().mean(axis=0))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().mean(axis=0))
    except MediaError:
        raise
    except (av.FFmpegError, OSError, ValueError, EOFError) as exc:
        raise MediaError(f"{path.name}: cannot decode ({type(exc).__name__}: {exc})") from exc
    if not chunks:
        raise MediaError(f"{path.name}: the audio stream holds no samples")
    return np.ascontiguousarray(np.concatenate(chunks), dtype=np.float32)
