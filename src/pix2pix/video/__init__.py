"""Video: clips and numbered frame sequences through a Translator, streaming, with a flicker metric
(temporal warping error) and optional temporal stabilisation. Needs PyAV (``pip install pix2pix[video]``)
for clips; frame sequences need only OpenCV."""
from .flow import MotionTracker, WarpingError, warping_error
from .io import (VIDEO_EXTENSIONS, ClipInfo, NotAVideo, NoVideoStream, UndecodableFrame, VideoError,
                 VideoReader, VideoWriter, is_video_file)
from .stream import VideoStats, translate_frames, translate_sequence, translate_video
from .temporal import TEMPORAL_METHODS, TemporalBlend, TemporalFilter, make_temporal

__all__ = ["VIDEO_EXTENSIONS", "ClipInfo", "NotAVideo", "NoVideoStream", "UndecodableFrame", "VideoError",
           "VideoReader", "VideoWriter", "is_video_file", "MotionTracker", "WarpingError", "warping_error",
           "VideoStats", "translate_frames", "translate_sequence", "translate_video", "TEMPORAL_METHODS",
           "TemporalBlend", "TemporalFilter", "make_temporal"]
