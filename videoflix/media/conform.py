"""Whatever people upload, made into the one picture every rendition, poster and sample starts from:
progressive, at a constant frame rate, as long as the longer stream, BT.709 SDR in limited range,
8-bit 4:2:0. Pure: filter strings from the probe, no ffmpeg run here.

- Interlaced sources are deinterlaced with bwdif at their frame rate (one frame per frame, not per
  field: the ladder's rates and the segment grid stay those of the source).
- Variable-frame-rate sources (phones) are made constant at their nominal rate (`fps`), so the
  keyframes every GOP frames fall on the same time grid in both ladders.
- Audio longer than the picture: the last frame is held (`tpad`) until the sound ends.
- HDR (PQ or HLG) is tone-mapped to SDR BT.709 with zscale and `tonemap=mobius`, chosen by
  measurement (bench/tonemap.py: SDR pictures graded to PQ and HLG at BT.2408's 203-nit white and
  mapped back; VMAF against the original, mean of 6: mobius 65.6, reinhard 64.3, hable 47.6; `clip`
  scores higher only because those pictures hold nothing above white, and it would burn out real
  highlights). mobius keeps everything below its knee linear and rolls off only the highlights,
  where hable darkens and flattens the mid-tones. The source's tags are passed explicitly, so a
  stream whose frames lose them is still read right.
- Full-range (JPEG) and BT.601 / BT.2020 SDR are converted to BT.709 limited with zscale.
Every encode then tags its output BT.709 limited (OUTPUT_COLOUR_ARGS)."""

from fractions import Fraction

from videoflix.media.probe import BT709

HOLD_THRESHOLD = 0.05  # seconds of sound past the last frame before the frame is held
TONE_MAP = "mobius"
# Nominal peak of SDR white, in nits, that linear light is scaled to before tone mapping.
SDR_PEAK_NITS = 100
OUTPUT_COLOUR_ARGS = ["-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv"]
# The frames say it too: encoders take the frames' tags over their own options.
TAGGED_BT709 = "setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709:range=tv"


def rate(fps):
    """The frame rate as ffmpeg's `fps` filter takes it exactly: the NTSC rates as n*1000/1001
    (29.97 -> 30000/1001), others as the nearest simple fraction."""
    fps = fps or 25
    whole = round(fps * 1.001)
    if abs(fps - whole / 1.001) < 0.005 and abs(fps - whole) > 0.005:
        return f"{whole * 1000}/1001"
    fraction = Fraction(fps).limit_denominator(1001)
    return f"{fraction.numerator}/{fraction.denominator}"


def colour_filters(colour):
    """zscale steps from the source's colour to BT.709 limited (none when it is that already)."""
    source = f"tin={colour.transfer}:min={colour.matrix}:pin={colour.primaries}:rin={int(colour.full_range)}"
    if colour.is_hdr:
        return [
            f"zscale={source}:t=linear:npl={SDR_PEAK_NITS}",
            "format=gbrpf32le",
            "zscale=p=bt709",
            f"tonemap={TONE_MAP}:desat=0",
            "zscale=t=bt709:m=bt709:r=tv",
        ]
    if colour.full_range or colour.matrix != BT709:
        return [f"zscale=min={colour.matrix}:rin={int(colour.full_range)}:m=bt709:r=tv"]
    return []


def deinterlacing(probe):
    return ["bwdif=mode=send_frame:parity=auto:deint=all"] if probe.interlaced else []


def picture_filters(probe):
    """Deinterlacing and colour: what a poster or a sample needs (they pick their own frames)."""
    return [*deinterlacing(probe), *colour_filters(probe.colour), "format=yuv420p", TAGGED_BT709]


def video_filters(probe):
    """The whole conversion for a rendition: picture, constant rate, held last frame."""
    steps = [*deinterlacing(probe), f"fps={rate(probe.fps)}"]
    held = probe.duration - probe.picture_duration
    if held > HOLD_THRESHOLD:
        steps.append(f"tpad=stop_mode=clone:stop_duration={held:.3f}")
    return [*steps, *colour_filters(probe.colour), "format=yuv420p", TAGGED_BT709]
