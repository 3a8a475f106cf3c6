//! The capture callback's code never allocates: driven here under an allocation
//! guard for every sample format and channel layout cpal can hand it, including a
//! full ring (the lost-frames path).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use assert_no_alloc::{assert_no_alloc, reset_violation_count, violation_count, AllocDisabler};
use cpal::{I24, U24};
use sotto::audio::capture::{ring, CaptureCounters, CaptureWriter, Doorbell};

#[global_allocator]
static ALLOCATOR: AllocDisabler = AllocDisabler;

fn drive<T: cpal::Sample + Copy>(buffer: Vec<T>, channels: usize)
where
    f32: cpal::FromSample<T>,
{
    let counters = Arc::new(CaptureCounters::default());
    // A small ring so that the loop below also fills it and takes the
    // lost-frames path.
    let (producer, _consumer) = ring(4_800, 0.0);
    // A reader parked on the doorbell, so ringing takes the futex-wake path.
    let bell = Doorbell::new(4_800);
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let reader = {
        let (bell, stop) = (bell.clone(), stop.clone());
        std::thread::spawn(move || {
            bell.answer();
            ready_tx.send(()).unwrap();
            while !stop.load(Ordering::Relaxed) {
                bell.wait();
            }
        })
    };
    ready_rx.recv().unwrap();
    let mut writer = CaptureWriter::new(producer, channels, counters.clone(), bell.clone());
    let n_frames = (buffer.len() / channels) as u64;
    let mut written = 0u64;
    reset_violation_count();
    assert_no_alloc(|| {
        for i in 0..10 {
            // Both ways of ringing: on every write, and once per 100 ms.
            bell.set_quiet(i >= 5);
            let lost = writer.write(&buffer);
            written += n_frames - lost as u64;
        }
    });
    assert_eq!(violation_count(), 0, "the callback allocated");
    assert!(bell.rung() >= 5, "the doorbell rang");
    stop.store(true, Ordering::Relaxed);
    drop(writer);
    reader.join().unwrap();
    assert_eq!(counters.frames_captured.load(Ordering::Relaxed), written);
    assert_eq!(
        counters.frames_lost.load(Ordering::Relaxed),
        10 * n_frames - written
    );
    assert!(
        counters.frames_lost.load(Ordering::Relaxed) > 0,
        "the full-ring path ran"
    );
}

#[test]
fn the_callback_never_allocates_for_any_format() {
    for channels in [1usize, 2, 6] {
        let frames = 480 * channels; // 10 ms at 48 kHz
        drive(vec![0.25f32; frames], channels);
        drive(vec![0.25f64; frames], channels);
        drive(vec![1000i16; frames], channels);
        drive(vec![-5i8; frames], channels);
        drive(vec![100_000i32; frames], channels);
        drive(vec![7i64; frames], channels);
        drive(vec![40_000u16; frames], channels);
        drive(vec![200u8; frames], channels);
        drive(vec![3_000_000_000u32; frames], channels);
        drive(vec![9u64; frames], channels);
        drive(vec![I24::new(1000).unwrap(); frames], channels);
        drive(vec![U24::new(9_000_000).unwrap(); frames], channels);
    }
}

#[test]
fn the_guard_catches_an_allocation() {
    // Proves the guard is armed in this build: an allocation inside it counts.
    reset_violation_count();
    assert_no_alloc(|| {
        let v: Vec<u8> = Vec::with_capacity(64);
        std::hint::black_box(v);
    });
    assert!(
        violation_count() > 0,
        "assert_no_alloc did not see the allocation"
    );
    reset_violation_count();
}

#[test]
fn downmix_is_the_mean_of_the_channels() {
    let counters = Arc::new(CaptureCounters::default());
    let (producer, mut consumer) = ring(48_000, 1.0);
    let mut writer = CaptureWriter::new(producer, 2, counters, Doorbell::new(48_000));
    writer.write(&[0.5f32, -0.5, 1.0, 0.0, i16::MAX as f32 / 32768.0, 0.0]);
    let got: Vec<f32> = std::iter::from_fn(|| consumer.pop().ok()).collect();
    assert_eq!(got.len(), 3);
    assert!((got[0] - 0.0).abs() < 1e-6 && (got[1] - 0.5).abs() < 1e-6);
    let mut writer16 =
        CaptureWriter::new(ring(100, 20.0).0, 1, Default::default(), Doorbell::new(100));
    assert_eq!(writer16.write(&[i16::MIN, i16::MAX]), 0);
}
