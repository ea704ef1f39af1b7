"""A file's decode, tried first in a process of its own, so that a crash in it ends that process, not the run.

PyAV and FFmpeg run native code: a frame layout PyAV mishandles (``AudioFrame.to_ndarray`` on 7.1 audio read past
its planes, SIGSEGV) or a decoder bug kills the process that meets it, and a predict run over a folder lost every
result with it. Before a file is streamed, ``check_decode`` demuxes all of it and decodes its audio exactly as the
stream will (``cfnsr.data.media_audio.ChannelReader``) in a child process; a child that dies marks the file as an
error naming the signal, and the run goes on. Video is demuxed there but not decoded (that would double the work):
a crash inside FFmpeg's video decoder is not caught this way; predictions.csv is written after every file, so the
files done before survive it.
"""

from __future__ import annotations

import fnmatch
import os
import signal
from pathlib import Path

# Test-only fault injection: a file whose name matches this glob kills the checking process with SIGKILL (as a
# codec crash would). Read in the calling process and passed on; never set in real use.
KILL_CHECK_ENV = "CFNSR_TEST_KILL_WORKER_ON"


def decode_in_child(args: tuple[str, bool, str | None]) -> str:
    """(path, with_audio, kill_on) -> "ok"; run in a child process by ``check_decode``. Python errors are not its
    business (the stream reports them per window): only a dying process is."""
    path, with_audio, kill_on = args
    if kill_on and fnmatch.fnmatch(Path(path).name, kill_on):
        os.kill(os.getpid(), signal.SIGKILL)
    import av

    from cfnsr.data.media_audio import ChannelReader

    try:
        with av.open(path) as container:
            astream = container.streams.audio[0] if with_audio and container.streams.audio else None
            reader = ChannelReader()
            for packet in container.demux():
                if astream is None or packet.stream.index != astream.index:
                    continue
                try:
                    frames = packet.decode()
                except av.FFmpegError:
                    continue
                for frame in frames:
                    reader.mono(frame)
    except Exception:  # noqa: BLE001 - the stream itself reports what it cannot read
        pass
    return "ok"


def check_decode(path: str | Path, with_audio: bool) -> str | None:
    """None when decoding ``path`` does not kill a process, else the reason to report for the file."""
    from cfnsr.data.worker_pool import exit_description, run_isolated

    result, code = run_isolated(decode_in_child, (str(path), with_audio, os.environ.get(KILL_CHECK_ENV)),
                                preload=[__name__, "av", "cv2", "cfnsr.data.media_audio"])  # imported once
    if result is not None:
        return None
    return (f"decoding this file killed the process that tried it ({exit_description(code)}): a crash in the "
            f"decoder, not predicted; the other files are not affected")
