//! The whisper.cpp wrapper on the real model: its abort callback stops a
//! decode in progress, and a decode with nothing to stop it finishes.

use std::sync::atomic::{AtomicUsize, Ordering};

use sotto::transcribe::{DecodeError, DecodeOptions, Decoder, AUDIO_CTX_FLOOR};

use sotto_testkit::*;

/// A spoken sentence at 16 kHz, as the decoder takes it.
fn speech() -> Vec<f32> {
    let dir = scratch();
    let (spoken, wav) = (dir.path().join("s.wav"), dir.path().join("s16.wav"));
    let mut s = Session::new(ESPEAK_RATE);
    s.silence(0.3)
        .say("Turn on the kitchen lights and close the blinds.")
        .silence(0.3);
    s.write(&spoken);
    sox(&spoken, &wav, &["-r", "16000", "-c", "1"]);
    read_wav(&wav).samples
}

#[test]
fn the_abort_callback_stops_a_decode_in_whisper_cpp() {
    let mut decoder = Decoder::load(&model_path(), "en", 1).unwrap();
    let samples = speech();
    let asked = AtomicUsize::new(0);
    let stop = || {
        asked.fetch_add(1, Ordering::SeqCst);
        false
    };
    let result = decoder.decode(
        &samples,
        DecodeOptions {
            keep_going: Some(&stop),
            ..DecodeOptions::with_ctx(AUDIO_CTX_FLOOR)
        },
    );
    assert_eq!(result.map(|d| d.text), Err(DecodeError::Aborted));
    assert!(
        asked.load(Ordering::SeqCst) >= 1,
        "whisper.cpp asked the callback"
    );

    // The same audio with nothing stopping it decodes: the abort above was the callback's.
    let decoded = decoder
        .decode(&samples, DecodeOptions::with_ctx(AUDIO_CTX_FLOOR))
        .unwrap();
    assert!(
        decoded.text.to_lowercase().contains("kitchen"),
        "{decoded:?}"
    );
}

#[test]
fn a_deadline_already_passed_aborts_the_decode() {
    let mut decoder = Decoder::load(&model_path(), "en", 1).unwrap();
    let result = decoder.decode(
        &speech(),
        DecodeOptions {
            deadline_ms: Some(now_ms()),
            ..DecodeOptions::with_ctx(AUDIO_CTX_FLOOR)
        },
    );
    assert_eq!(result.map(|d| d.text), Err(DecodeError::Aborted));
}
