//! The VAD sotto builds (earshot from `vendor/earshot`, see vendor/README.md)
//! finds the utterances the published earshot 1.2.2 finds: every shared clip,
//! through the audio path with sottod's default settings and a VAD that scores
//! every frame, gives the boundaries recorded with the published crate, to the
//! frame.

use sotto::dsp::segmenter::Segment;
use sotto::dsp::Frontend;
use sotto_testkit::*;

use super::gate::default_settings;

/// Each clip's utterances as (start, end) in ms from its first sample.
fn boundaries(audio: &[f32]) -> Vec<(u64, u64)> {
    let mut frontend = Frontend::ungated(default_settings());
    let mut heard = Vec::new();
    let mut on_segment = |s: Segment| {
        if let Segment::Ended(u) = s {
            heard.push((u.start_ms, u.end_ms));
        }
    };
    frontend.begin_stream(16_000, 0);
    for block in audio.chunks(1_000) {
        frontend.push(block, &mut on_segment);
    }
    frontend.end_stream(&mut on_segment);
    heard
}

/// Recorded with earshot 1.2.2 from crates.io, in manifest order.
const PUBLISHED: &[(&str, &[(u64, u64)])] = &[
    (
        "speech/ls_2412-153948-0000.wav",
        &[(464, 7568), (8384, 11040)],
    ),
    (
        "speech/ls_2412-153948-0001.wav",
        &[(544, 6560), (7200, 10256)],
    ),
    ("speech/ls_2412-153948-0002.wav", &[(544, 3200)]),
    ("speech/ls_3752-4944-0000.wav", &[(432, 2912)]),
    ("speech/ls_3752-4944-0001.wav", &[(320, 4144)]),
    ("speech/ls_3752-4944-0002.wav", &[(416, 3008)]),
    ("speech/ls_1988-24833-0000.wav", &[(480, 3056)]),
    ("speech/ls_1988-24833-0001.wav", &[(352, 7408)]),
    ("speech/ls_1988-24833-0002.wav", &[(400, 4048)]),
    ("speech/ls_1988-24833-0003.wav", &[(192, 4624)]),
    (
        "speech/jfk.wav",
        &[(320, 2208), (3296, 4336), (5408, 7552), (8192, 10944)],
    ),
    ("speech/cmu_goforward.wav", &[(528, 2128)]),
    ("speech/cmu_cards_005.wav", &[(208, 3248)]),
    ("speech/lj_LJ001-0001.wav", &[(48, 9600)]),
    ("speech/lj_LJ001-0007.wav", &[(0, 8304)]),
    ("speech/lj_LJ001-0011.wav", &[(16, 4400)]),
    ("speech/lj_LJ001-0013.wav", &[(16, 2496)]),
    ("speech/lj_LJ001-0016.wav", &[(0, 5136)]),
    ("speech/lj_LJ001-0025.wav", &[(144, 8752)]),
    ("speech/lj_LJ002-0020.wav", &[(0, 1424)]),
    ("nonspeech/sc_doing_the_dishes_15s.wav", &[]),
    ("nonspeech/sc_running_tap_15s.wav", &[]),
    ("nonspeech/sc_exercise_bike_15s.wav", &[]),
    ("nonspeech/sc_dude_miaowing_15s.wav", &[]),
    (
        "nonspeech/music_brahms_hungarian_dance5.wav",
        &[(272, 13296), (15120, 19936)],
    ),
    (
        "nonspeech/music_macleod_vibe_ace.wav",
        &[(464, 10672), (11536, 19936)],
    ),
    ("nonspeech/music_solo_trumpet.wav", &[]),
    ("nonspeech/nature_robin_call.wav", &[]),
    ("nonspeech/syn_silence_digital_10s.wav", &[]),
    ("nonspeech/syn_silence_dither_10s.wav", &[]),
    ("nonspeech/syn_room_tone_brown_15s.wav", &[]),
    ("nonspeech/syn_hum_50hz_15s.wav", &[]),
    ("nonspeech/syn_hum_60hz_15s.wav", &[]),
    ("nonspeech/syn_white_noise_10s.wav", &[]),
    ("nonspeech/syn_pink_noise_10s.wav", &[]),
    ("nonspeech/syn_beeps_1khz_10s.wav", &[]),
    ("nonspeech/syn_sine_sweep_8s.wav", &[(80, 1808)]),
    ("noisy/ls_1988-24833-0001_dishes_snr10.wav", &[(912, 7904)]),
    ("noisy/ls_3752-4944-0000_tap_snr5.wav", &[(944, 3504)]),
    ("noisy/ls_2412-153948-0002_white_snr5.wav", &[(1072, 3792)]),
    ("noisy/lj_LJ001-0011_cat_snr15.wav", &[(512, 4912)]),
    (
        "noisy/ls_1988-24833-0003_farfield_reverb.wav",
        &[(496, 4992)],
    ),
];

#[test]
fn the_vad_finds_the_utterances_the_published_earshot_finds() {
    let clips = manifest();
    assert_eq!(
        clips.len(),
        PUBLISHED.len(),
        "the shared clips changed: record PUBLISHED again with the published earshot"
    );
    let mut moved = Vec::new();
    for (clip, (file, published)) in clips.iter().zip(PUBLISHED) {
        assert_eq!(&clip.file, file, "the shared clips changed order");
        let heard = boundaries(&read_wav(&testdata().join(&clip.file)).samples);
        if heard != *published {
            moved.push(format!("{file}: {heard:?}, published {published:?}"));
        }
    }
    let utterances: usize = PUBLISHED.iter().map(|(_, u)| u.len()).sum();
    println!(
        "{} clips, {utterances} utterances: {} moved",
        PUBLISHED.len(),
        moved.len()
    );
    assert!(
        moved.is_empty(),
        "utterances (start, end ms) that moved against the published earshot:\n{}",
        moved.join("\n")
    );
}
