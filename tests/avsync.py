"""A/V sync: a source with a white flash and a 1 kHz beep at the same instants, a live sender
that sends its audio late while its RTCP sender reports say it is in sync, and the measurement
of how far apart flashes and beeps are in a recording.

The source is black video and silence, with one white frame and a 50 ms beep at
`FLASH_TIMES`. `send` has GStreamer (see `tests.senders.gst_vp8_opus`) hold every audio packet
back by `AUDIO_DELAY` while stamping and reporting it as captured: a recorder that lines audio
and video up by arrival time ends up `AUDIO_DELAY` off, one that uses the SRs gets it right.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.senders import Sender, gst_vp8_opus

FPS = 30
SECONDS = 4
FLASH_FRAMES = tuple(range(FPS // 2, FPS * SECONDS, FPS))  # frames 15, 45, 75, 105
FLASH_TIMES = tuple(frame / FPS for frame in FLASH_FRAMES)  # 0.5, 1.5, 2.5, 3.5 s
BEEP_SECONDS = 0.05
BEEP_HZ = 1000
AUDIO_DELAY = 0.3
# Same Opus framing as the fixture: 200 packets of 20 ms, the last one full after the encoder
# delay (312 samples at 48 kHz), so nothing depends on end trimming, which RTP cannot signal.
AUDIO_SAMPLES = 200 * 960 - 312

# Detection thresholds: the flash is white (Y 235) on black (Y 16); the beep peaks at -6 dBFS
# in digital silence. Halfway is far from both after lossy coding.
FLASH_LUMA = 128.0
BEEP_PEAK_DB = -30.0
# Audio is measured in windows this long: the resolution of a beep's onset.
AUDIO_WINDOW_SAMPLES = 48  # 1 ms at 48 kHz
# A flash and a beep further apart than this are not the same event.
PAIRING_LIMIT = 0.4
TIMEOUT = 60

FFMPEG = "ffmpeg -nostdin -v error -y"


def make_source(directory: Path) -> Path:
    """Write source.ivf (VP8) and source.ogg (Opus) into `directory`, the way the committed
    fixture sources are made, and a WebM of both (source.webm)."""
    directory.mkdir(parents=True, exist_ok=True)
    flash = f"eq(mod(n\\,{FPS})\\,{FPS // 2})"
    beep = f"between(mod(t\\,1)-0.5\\,0\\,{BEEP_SECONDS}-1/48000)"
    commands = [
        f"{FFMPEG} -f lavfi -i color=c=black:s=320x240:r={FPS}:d={SECONDS}"
        f" -vf drawbox=x=0:y=0:w=iw:h=ih:color=white:t=fill:enable='{flash}'"
        " -pix_fmt yuv420p -c:v libvpx -deadline realtime -cpu-used 8 -threads 1 -b:v 300k"
        f" -g {FPS} -keyint_min {FPS} -lag-in-frames 0 -auto-alt-ref 0 -bitexact"
        " -f ivf source.ivf",
        f"{FFMPEG} -f lavfi -i aevalsrc='0.5*sin(2*PI*{BEEP_HZ}*t)*{beep}':s=48000:c=stereo"
        f" -af atrim=end_sample={AUDIO_SAMPLES} -c:a libopus -b:a 64k -frame_duration 20"
        " -bitexact source.ogg",
        f"{FFMPEG} -i source.ivf -i source.ogg -c copy source.webm",
    ]
    for command in commands:
        _run(shlex.split(command), directory)
    return directory


def send(video_port: int, audio_port: int, source_dir: Path, audio_delay: float = AUDIO_DELAY,
         **options: object) -> Sender:  # fmt: skip
    """GStreamer sending the source live, audio `audio_delay` late on the wire only."""
    return gst_vp8_opus(
        video_port, audio_port, source_dir=source_dir, audio_delay=audio_delay, **options
    )  # type: ignore[arg-type]


def flash_times(path: Path) -> list[float]:
    """Presentation times of the frames where the picture turns white."""
    filters = "signalstats,metadata=mode=print:key=lavfi.signalstats.YAVG:file=-"
    values = _metadata(path, "0:v", "-vf", filters, "lavfi.signalstats.YAVG")
    return _onsets(values, lambda luma: luma > FLASH_LUMA, min_gap=0.2)


def beep_times(path: Path) -> list[float]:
    """Times where the audio jumps from silence to the beep, to `AUDIO_WINDOW_SAMPLES`."""
    filters = (
        f"aformat=sample_rates=48000,asetnsamples=n={AUDIO_WINDOW_SAMPLES}:p=0,"
        "astats=metadata=1:reset=1,"
        "ametadata=mode=print:key=lavfi.astats.Overall.Peak_level:file=-"
    )
    values = _metadata(path, "0:a", "-af", filters, "lavfi.astats.Overall.Peak_level")
    return _onsets(values, lambda level: level > BEEP_PEAK_DB, min_gap=0.2)


def measure_offset(path: Path, audio_path: Path | None = None) -> list[float]:
    """Video minus audio, in seconds, for each flash paired with the nearest beep; the audio
    comes from `audio_path` when given (a source kept as two files)."""
    beeps = beep_times(audio_path or path)
    offsets = []
    for flash in flash_times(path):
        if not beeps:
            break
        nearest = min(beeps, key=lambda beep: abs(beep - flash))
        if abs(nearest - flash) <= PAIRING_LIMIT:
            offsets.append(flash - nearest)
    return offsets


def _metadata(
    path: Path, stream: str, option: str, filters: str, key: str
) -> list[tuple[float, float]]:
    """(pts_time, value) of every frame the metadata filter printed, in file timestamps."""
    # -copyts: the times the file says, not shifted by its start time.
    command = ["ffmpeg", "-nostdin", "-v", "error", "-copyts", "-i", str(path), "-map", stream]
    command += [option, filters, "-f", "null", "-"]
    # Only the exit status counts here: whether FFmpeg finds fault with the file is for the
    # test to judge (tests.judges.decode_errors), not a reason to measure nothing.
    output = _run(command, path.parent, strict=False)
    values = []
    time = None
    for line in output.splitlines():
        frame = re.match(r"frame:\s*\d+\s+pts:\s*-?\d+\s+pts_time:\s*(-?[\d.e+-]+)", line)
        if frame:
            time = float(frame.group(1))
        elif line.startswith(key + "=") and time is not None:
            value = line.split("=", 1)[1]
            values.append((time, float("-inf") if value in ("-inf", "-nan") else float(value)))
    return values


def _onsets(
    values: list[tuple[float, float]], on: Callable[[float], bool], min_gap: float
) -> list[float]:
    """Times where `on(value)` becomes true after having been false for `min_gap` seconds."""
    onsets = []
    last_on = float("-inf")
    for time, value in values:
        if on(value):
            if time - last_on > min_gap:
                onsets.append(time)
            last_on = time
    return onsets


def _run(command: list[str], cwd: Path, strict: bool = True) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT)
    if done.returncode != 0 or (strict and done.stderr.strip()):
        raise AssertionError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return done.stdout
