"""Read and write clips through PyAV (the FFmpeg inside its wheels), and folders of numbered frames.

Frames are handed out *upright* (the stream's display rotation applied), so the network sees
what a viewer sees; the writer turns them back and stores the same rotation, so the output plays
in the same orientation at the same stored size. Timestamps are copied frame by frame (variable
frame rates survive), and the audio is copied packet by packet, never re-encoded.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".gif", ".avi")
# Encoders tried in order for each output container when --codec is not given: the best the wheel
# has first. PyPI's PyAV wheels ship libx264, libvpx and the gif encoder.
DEFAULT_ENCODERS = {
    ".mp4": ("libx264", "libopenh264", "mpeg4"), ".m4v": ("libx264", "libopenh264", "mpeg4"),
    ".mov": ("libx264", "libopenh264", "mpeg4"), ".mkv": ("libx264", "libopenh264", "mpeg4"),
    ".avi": ("libx264", "mpeg4"), ".webm": ("libvpx-vp9", "libvpx", "libaom-av1"), ".gif": ("gif",),
}
DEFAULT_CRF = {"libx264": 18, "libvpx-vp9": 31, "libvpx": 10, "libaom-av1": 30}


class VideoError(ValueError):
    """A clip that cannot be read or written; the message names the file and what to do."""


class NotAVideo(VideoError):
    pass


class NoVideoStream(VideoError):
    pass


class UndecodableFrame(VideoError):
    def __init__(self, path: Path, index: int, detail: str) -> None:
        super().__init__(f"{path}: frame {index} cannot be decoded ({detail}); frames 0-{index - 1} "
                         f"were read")
        self.index = index


def is_video_file(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS


@dataclass(frozen=True)
class ClipInfo:
    """What the writer needs to reproduce a clip: stored size, rotation, timing and audio."""
    path: Path
    width: int           # stored (coded) size; frames are handed out upright
    height: int
    rotation: int        # display rotation in degrees, counter-clockwise (FFmpeg's display matrix)
    fps: float           # average rate, for the encoder's nominal rate and for ETAs
    time_base: Fraction
    frames: Optional[int]  # from the container; None when it does not say
    codec: str
    audio: bool

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) as shown."""
        return (self.height, self.width) if self.rotation % 180 else (self.width, self.height)


@dataclass
class Frame:
    """One decoded frame: (H, W, 3) uint8 upright, and its timestamp in the stream's time base."""
    index: int
    image: np.ndarray
    pts: Optional[int]
    time: Optional[float]


def _upright(img: np.ndarray, rotation: int) -> np.ndarray:
    # np.rot90 turns counter-clockwise, as the display matrix angle does.
    k = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(img, k)) if k else img


def _stored(img: np.ndarray, rotation: int) -> np.ndarray:
    k = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(img, -k)) if k else img


class VideoReader:
    """Decode the first video stream of ``path`` frame by frame (constant memory).

    Raises NotAVideo (FFmpeg cannot open it), NoVideoStream, and UndecodableFrame(index) from
    :meth:`frames` when the data of a frame is broken.
    """

    def __init__(self, path: str | Path) -> None:
        import av

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"clip {self.path} does not exist")
        try:
            self.container = av.open(str(self.path))
        except av.error.FFmpegError as e:
            raise NotAVideo(f"{self.path} is not a video FFmpeg can read ({e.strerror or e}); "
                            f"give an MP4, MOV, MKV, WebM, AVI or GIF file") from None
        if not self.container.streams.video:
            kinds = ", ".join(s.type for s in self.container.streams) or "none"
            self.container.close()
            raise NoVideoStream(f"{self.path} has no video stream (streams: {kinds})")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"  # frame threads: decoding keeps up with the network
        rate = self.stream.average_rate or self.stream.guessed_rate or Fraction(25)
        frames = self.stream.frames or None
        if frames is None and self.stream.duration and self.stream.time_base:
            frames = int(round(float(self.stream.duration * self.stream.time_base) * float(rate)))
        self._first = None
        rotation = 0
        try:
            self._decoder = self.container.decode(self.stream)
            self._first = next(self._decoder, None)
            if self._first is not None:
                rotation = int(round(self._first.rotation or 0))
        except av.error.FFmpegError as e:
            self.container.close()
            raise UndecodableFrame(self.path, 0, str(e)) from None
        self.info = ClipInfo(path=self.path, width=self.stream.codec_context.width,
                             height=self.stream.codec_context.height, rotation=rotation,
                             fps=float(rate), time_base=self.stream.time_base or Fraction(1, 90000),
                             frames=frames, codec=self.stream.codec_context.name,
                             audio=bool(self.container.streams.audio))

    def frames(self) -> Iterator[Frame]:
        import av

        index = 0
        frame = self._first
        while frame is not None:
            yield Frame(index, _upright(frame.to_ndarray(format="rgb24"), self.info.rotation),
                        frame.pts, frame.time)
            index += 1
            try:
                frame = next(self._decoder, None)
            except av.error.FFmpegError as e:
                raise UndecodableFrame(self.path, index, str(e)) from None

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def choose_encoder(suffix: str, codec: Optional[str] = None) -> str:
    """The encoder for an output file: ``codec`` if the wheel has it, else the container's best."""
    import av

    if codec:
        if codec not in av.codecs_available:
            raise VideoError(f"this PyAV build has no {codec!r} encoder (--codec); try one of "
                             f"{', '.join(sorted({c for cs in DEFAULT_ENCODERS.values() for c in cs} & av.codecs_available))}")
        return codec
    for name in DEFAULT_ENCODERS.get(suffix.lower(), ()):
        if name in av.codecs_available:
            return name
    raise VideoError(f"no encoder for {suffix!r} output; write one of {', '.join(DEFAULT_ENCODERS)}")


class VideoWriter:
    """Encode upright (H, W, 3) uint8 frames into ``path`` with the timing, rotation and audio of
    ``like``. The file is playable after :meth:`close`, whatever point the clip stopped at."""

    def __init__(self, path: str | Path, like: ClipInfo, *, codec: Optional[str] = None,
                 crf: Optional[int] = None, bitrate: Optional[int] = None, audio: bool = True) -> None:
        import av

        self.path = Path(path)
        self.like = like
        self.codec = choose_encoder(self.path.suffix, codec)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.container = av.open(str(self.path), "w")
        rate = Fraction(like.fps).limit_denominator(1001 * 1000)
        try:
            self.stream = self.container.add_stream(self.codec, rate=rate)
        except ValueError as e:  # e.g. --codec gif for an .mp4: FFmpeg's message names neither
            self.container.close()
            raise VideoError(f"{self.path}: the {self.codec} encoder cannot write a {self.path.suffix} "
                             f"file ({e}); pick another --codec, or leave it out for the "
                             f"container's default") from None
        self.stream.width, self.stream.height = like.width, like.height
        if self.codec == "gif":
            self.stream.pix_fmt = "rgb8"
        elif like.width % 2 or like.height % 2:
            # 4:2:0 needs even sizes; 4:4:4 keeps the odd size exactly (fewer players take it).
            self.stream.pix_fmt = "yuv444p"
            log.info("%s: odd frame size %dx%d, encoding 4:4:4", self.path, like.width, like.height)
        else:
            self.stream.pix_fmt = "yuv420p"
        self.stream.time_base = like.time_base
        self.stream.codec_context.time_base = like.time_base
        options = {}
        if bitrate:
            self.stream.bit_rate = int(bitrate)
        elif self.codec in DEFAULT_CRF:
            options["crf"] = str(DEFAULT_CRF[self.codec] if crf is None else crf)
            if self.codec.startswith("libvpx"):
                options["b"] = "0"  # constant quality, no bitrate cap
        elif crf is not None:
            raise VideoError(f"--crf does not apply to the {self.codec} encoder; use --bitrate")
        self.stream.options = options
        if like.rotation:
            self.stream.set_display_rotation(like.rotation)
        self.audio_in = None
        self.audio_out = None
        if audio and like.audio:
            try:
                self.audio_in = av.open(str(like.path))
                self.audio_out = self.container.add_stream_from_template(self.audio_in.streams.audio[0])
            except (av.error.FFmpegError, ValueError) as e:
                log.warning("%s: the audio cannot be copied into %s (%s); writing video only",
                            like.path, self.path.suffix, e)
                self.audio_in = self.audio_out = None
        log.info("writing %s with the %s encoder (%s)", self.path, self.codec,
                 f"{bitrate} bit/s" if bitrate else f"crf {options.get('crf', 'default')}")
        self._audio_packets = None
        self._held = None  # the first audio packet not muxed yet
        self.frames = 0
        self._last_time = 0.0
        self._closed = False

    def write(self, image: np.ndarray, pts: Optional[int], time: Optional[float] = None) -> None:
        """(H, W, 3) uint8 upright; ``pts`` in the source's time base (None: from the frame rate)."""
        import av

        frame = av.VideoFrame.from_ndarray(_stored(image, self.like.rotation), format="rgb24")
        if pts is None:
            pts = int(round(self.frames / self.like.fps / self.like.time_base))
        frame.pts = pts
        frame.time_base = self.like.time_base
        self._last_time = float(pts * self.like.time_base) + 1.0 / self.like.fps
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames += 1
        if self.audio_in is not None:
            # Interleave as we go: the muxer would otherwise hold every video packet in memory
            # waiting for audio, and a partial file would have none.
            self._copy_audio(float(pts * self.like.time_base))

    def close(self, audio_until: Optional[float] = None) -> None:
        """Flush the encoder, copy the audio (up to ``audio_until`` seconds, default: all of it
        when every frame was written) and write the trailer. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            for packet in self.stream.encode():
                self.container.mux(packet)
            if self.audio_in is not None:
                self._copy_audio(audio_until)
        finally:
            self.container.close()
            if self.audio_in is not None:
                self.audio_in.close()

    def _copy_audio(self, until: Optional[float]) -> None:
        """Mux the source's audio packets that start before ``until`` s (None: all that are left)."""
        src = self.audio_in.streams.audio[0]
        if self._audio_packets is None:
            self._audio_packets = self.audio_in.demux(src)
        while True:
            if self._held is None:
                packet = next(self._audio_packets, None)
                if packet is None:
                    return
                if packet.dts is None:
                    continue  # the demuxer's end-of-stream marker
                self._held = packet
            packet = self._held
            if until is not None and packet.pts is not None and float(packet.pts * src.time_base) >= until:
                return
            self._held = None
            packet.stream = self.audio_out
            self.container.mux(packet)


# ---- folders of numbered frames --------------------------------------------------------------

def _natural_key(path: Path) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def sequence_files(folder: str | Path) -> list[Path]:
    """The image files of ``folder`` in name order, numbers compared as numbers (2 before 10)."""
    from ..util.imageio import is_image_file

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"frame folder {folder} does not exist (--sequence takes folders)")
    files = sorted((p for p in folder.iterdir() if p.is_file() and is_image_file(p)), key=_natural_key)
    if not files:
        raise ValueError(f"{folder} holds no frames (looked for png, jpg, tif, bmp, webp)")
    return files


def check_frame_size(first: Optional[tuple[int, int]], shape: tuple[int, ...], what: str) -> tuple[int, int]:
    """The clip's frame size ((H, W) of its first frame): ``shape`` must match ``first`` (None for
    the first frame), else a ValueError naming ``what``. Motion, blending and batching compare
    neighbouring frames pixel by pixel, so a clip has one frame size."""
    size = (int(shape[0]), int(shape[1]))
    if first is not None and size != first:
        raise ValueError(f"{what} is {size[1]}x{size[0]} px but the first frame is {first[1]}x{first[0]}; "
                         f"a clip has one frame size: resize the frames to one size first")
    return size


def read_sequence(files: list[Path]) -> Iterator[Frame]:
    """Frames of a numbered sequence as (H, W, 3) uint8; every frame must have the first's size."""
    from ..util.imageio import read_image, to_channels

    size = None
    for i, path in enumerate(files):
        arr = to_channels(read_image(path), 3, str(path))
        img = (np.clip(arr, 0, 1) * 255 + 0.5).astype(np.uint8)
        size = check_frame_size(size, img.shape, str(path))
        yield Frame(i, img, None, None)


__all__ = ["VIDEO_EXTENSIONS", "VideoError", "NotAVideo", "NoVideoStream", "UndecodableFrame",
           "ClipInfo", "Frame", "VideoReader", "VideoWriter", "check_frame_size", "choose_encoder", "is_video_file",
           "sequence_files", "read_sequence"]
