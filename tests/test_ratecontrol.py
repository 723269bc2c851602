"""Per-title rate control and geometry: pure functions, checked without running ffmpeg."""

import math
from fractions import Fraction

import pytest

from videoflix.media import ratecontrol
from videoflix.media.ladder import (
    EFFICIENT_GOP_SECONDS,
    EFFICIENT_RUNGS,
    REFERENCE_KBPS,
    build_hls_command,
    build_ladder,
    poster_size,
)
from videoflix.media.probe import Probe, display_size
from videoflix.media.ratecontrol import Sample, choose_crf, sample_windows


def content(vmaf_at_10=100.0, vmaf_per_step=0.8, kbps_at_10=4000.0):
    """A title as the probes see it: VMAF falls and bits shrink (12% a step) as the CRF rises."""
    calls = []

    def measure(crf):
        calls.append(crf)
        return Sample(vmaf=vmaf_at_10 - vmaf_per_step * (crf - 10), kbps=kbps_at_10 * 0.88 ** (crf - 10))

    return measure, calls


def test_the_highest_crf_that_reaches_the_reference_quality_is_chosen_when_it_costs_less():
    measure, calls = content()
    choice = choose_crf(measure, Sample(vmaf=90.0, kbps=3000.0), budget=3000.0)  # target 90.3: CRF <= 22.125
    assert choice.crf == 22.1  # between the probes at 22 (passes) and 23 (fails)
    assert choice.measured.vmaf >= choice.target == pytest.approx(90.0 + ratecontrol.VMAF_MARGIN)
    assert choice.measured.kbps <= 3000
    assert len(calls) <= ratecontrol.MAX_PROBES


def test_a_crf_that_would_spend_more_than_the_reference_moves_up_until_it_does_not():
    measure, _calls = content()
    choice = choose_crf(measure, Sample(vmaf=95.0, kbps=1000.0), budget=1000.0)  # quality: CRF 15; bits: 20.84+
    assert choice.measured.kbps <= 1000
    assert choice.crf == 20.9
    assert choice.probes <= 2 * (ratecontrol.MAX_PROBES + ratecontrol.EXTRA_PROBES)


def test_easy_content_gets_a_high_crf():
    measure, _calls = content(vmaf_at_10=110.0, vmaf_per_step=0.5)  # still 98 at CRF 34
    choice = choose_crf(measure, Sample(vmaf=97.0, kbps=1000.0), budget=1000.0)
    assert choice.crf > 28
    assert choice.measured.vmaf >= choice.target


def test_a_rung_searched_from_the_crf_of_the_rung_below_takes_fewer_probes():
    below = ratecontrol.Choice(crf=27.4, measured=Sample(vmaf=90.4, kbps=2000.0), target=90.3, budget_kbps=2500,
                               probes=4)  # fmt: skip
    assert ratecontrol.first_guess(below) == 27 and ratecontrol.first_guess(None) == ratecontrol.CRF_FIRST
    cold, warm = content(vmaf_per_step=0.5), content(vmaf_per_step=0.5)  # the target is met up to CRF 29.4
    from_default = choose_crf(cold[0], Sample(vmaf=90.0, kbps=9000.0), budget=9000.0)
    from_below = choose_crf(
        warm[0], Sample(vmaf=90.0, kbps=9000.0), budget=9000.0, first=ratecontrol.first_guess(below)
    )
    assert from_below.crf == from_default.crf == 29.4
    assert (warm[1], cold[1]) == ([27, 28, 29, 30], [23, 26, 28, 29, 30])  # a probe fewer


# --- the whole rung checked after it is encoded (a fake encoder: no ffmpeg) ---


def rung_encoder(kbps_at_choice, crf_of_choice, calls):
    """A whole-film encode that delivers `kbps_at_choice` at the chosen CRF, 12% less a step."""

    def encode_at(crf):
        calls.append(crf)
        return ratecontrol.Encode(crf, kbps_at_choice * 0.88 ** (crf - crf_of_choice))

    return encode_at


CHOICE = ratecontrol.Choice(crf=24.0, measured=Sample(vmaf=93.5, kbps=5000.0), target=93.4, budget_kbps=5160.0,
                            probes=4)  # 1080p: budget 5160 video + 96 audio = 5256 kb/s delivered  # fmt: skip


def test_a_rung_that_overspends_on_the_whole_film_is_encoded_again_within_its_budget():
    """The issue's grain clip: the samples promised the budget, the whole rung spent 1.06x."""
    calls = []
    encode_at = rung_encoder(5256 * 1.06, 24.0, calls)
    best, encodes = ratecontrol.settle(CHOICE, encode_at(24.0), encode_at, audio_kbps=96)
    assert calls[1] == pytest.approx(24.0 + math.log(1.06) / math.log(1.12) + 0.3, abs=0.1)  # 24.9
    assert len(encodes) == 2 and best is encodes[1]
    assert best.kbps <= 5256


def test_a_rung_within_budget_and_near_its_target_is_kept_as_it_is():
    calls = []
    encode_at = rung_encoder(5000, 24.0, calls)
    best, encodes = ratecontrol.settle(CHOICE, encode_at(24.0), encode_at, audio_kbps=96)
    assert calls == [24.0] and best is encodes[0]


def test_a_rung_far_above_its_target_gives_the_bits_back():
    generous = ratecontrol.Choice(crf=20.0, measured=Sample(vmaf=97.0, kbps=4000.0), target=93.4,
                                  budget_kbps=5160.0, probes=3)  # fmt: skip
    calls = []
    encode_at = rung_encoder(4000, 20.0, calls)
    best, _encodes = ratecontrol.settle(generous, encode_at(20.0), encode_at, audio_kbps=96)
    assert calls[1] == pytest.approx(20.0 + 3.6 - ratecontrol.VMAF_MARGIN, abs=0.1)  # to the margin above the target
    assert best.crf == calls[1] and best.kbps < 4000


def test_re_encodes_are_bounded_and_the_fewest_bits_win_when_none_fits():
    calls = []
    stubborn = lambda crf: (calls.append(crf), ratecontrol.Encode(crf, 9000.0 - crf))[1]  # noqa: E731
    best, encodes = ratecontrol.settle(CHOICE, stubborn(24.0), stubborn, audio_kbps=96)
    assert len(encodes) == 1 + ratecontrol.MAX_REENCODES
    assert best == min(encodes, key=lambda encode: encode.kbps)


def test_the_rule_is_within_budget_then_fewest_bits_at_the_target():
    budget = ratecontrol.rung_budget(CHOICE, 96)
    over = ratecontrol.Encode(24.0, budget + 1)
    fits_at_target = ratecontrol.Encode(24.1, budget - 50)
    fits_below_target = ratecontrol.Encode(26.0, budget - 900)
    assert ratecontrol.best_encode([over, fits_at_target, fits_below_target], CHOICE, 96) is fits_at_target
    assert ratecontrol.best_encode([over, fits_below_target], CHOICE, 96) is fits_below_target


def test_the_budget_is_what_the_reference_delivers_less_this_rungs_audio():
    spec = EFFICIENT_RUNGS[0]  # 480p: reference 1000 kb/s video + 128 kb/s audio; this rung's audio 96
    assert ratecontrol.video_budget(spec, Sample(vmaf=90.0, kbps=940.0)) == 940 + 128 - 96  # an easy title
    assert ratecontrol.video_budget(spec, Sample(vmaf=90.0, kbps=1100.0)) == 1100 + 128 - 96  # a hard one


def test_samples_spread_over_the_video_or_take_it_whole():
    assert sample_windows(5.0) == [(0.0, 5.0)]
    assert sample_windows(6.0) == [(0.0, 6.0)]
    assert sample_windows(10.0) == [(0.667, 2.0), (4.0, 2.0), (7.333, 2.0)]  # a short clip is not encoded whole
    windows = sample_windows(600.0)
    assert [start for start, _ in windows] == [99.0, 299.0, 499.0]
    assert all(length == ratecontrol.SAMPLE_SECONDS for _, length in windows)
    film = sample_windows(7200.0)  # a 2-hour film: 8 samples, 16 s, spread from start to end
    assert len(film) == ratecontrol.MAX_SAMPLES and film[0][0] < 500 and film[-1][0] > 6700


def test_vmaf_is_read_from_libvmafs_json_log():
    log = '{"pooled_metrics": {"vmaf": {"min": 80.1, "mean": 93.25, "harmonic_mean": 93.0}}}'
    assert ratecontrol.read_vmaf(log) == 93.25


@pytest.mark.parametrize(
    ("coded", "sar", "rotation", "shown"),
    [
        ((720, 480), Fraction(32, 27), 0, (853, 480)),  # NTSC DVD, 16:9
        ((720, 576), Fraction(64, 45), 0, (1024, 576)),  # PAL DVD, 16:9
        ((720, 576), Fraction(16, 15), 0, (768, 576)),  # PAL DVD, 4:3
        ((176, 144), Fraction(128, 117), 0, (193, 144)),  # QCIF, display aspect 1.337
        ((1920, 1080), None, 90, (1080, 1920)),  # a phone held upright
        ((1920, 1080), Fraction(1, 1), -90, (1080, 1920)),
        ((1280, 544), None, 0, (1280, 544)),  # 2.35:1
    ],
)
def test_display_size_applies_pixel_shape_and_rotation(coded, sar, rotation, shown):
    assert display_size(*coded, sar, rotation) == shown


def probe(width, height, fps=25.0):
    return Probe(duration=10.0, width=width, height=height, fps=fps, has_audio=True)


def test_a_cinema_width_source_keeps_its_aspect_and_is_not_upscaled():
    rungs = build_ladder(probe(1280, 544))
    assert [(r.name, r.width, r.height) for r in rungs] == [("480p", 1130, 480)]
    assert abs(1130 / 480 - 1280 / 544) / (1280 / 544) < 0.01


def test_the_poster_has_the_displayed_aspect():
    assert poster_size(probe(853, 480)) == (854, 480)
    assert poster_size(probe(1920, 1080)) == (1280, 720)
    assert poster_size(probe(1080, 1920)) == (406, 720)


def test_the_efficient_ladder_caps_peaks_at_twice_the_reference_rates_with_one_gop_per_segment():
    source = probe(1920, 1080, fps=30)
    rungs = build_ladder(source, EFFICIENT_RUNGS)
    command = build_hls_command("ffmpeg", "in.mp4", "/out", source, rungs, gop_seconds=EFFICIENT_GOP_SECONDS)
    values = {part: command[i + 1] for i, part in enumerate(command[:-1])}
    assert values["-force_key_frames"] == "expr:gte(t,n_forced*6)"  # one per segment
    assert values["-g"] == "360"  # x264's own interval only a backstop past the forced ones
    assert values["-hls_time"] == "6" and values["-sc_threshold"] == "0"
    for index, rung in enumerate(rungs):
        assert values[f"-preset:v:{index}"] == "slower"
        assert values[f"-maxrate:v:{index}"] == f"{2 * REFERENCE_KBPS[rung.name]}k"  # peaks; CRF sets the average
        assert values[f"-bufsize:v:{index}"] == f"{2 * REFERENCE_KBPS[rung.name]}k"
        assert values[f"-b:a:{index}"] == "96k"
