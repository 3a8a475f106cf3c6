//! Every worker loop exits promptly when its input closes, with no input at all.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sotto::audio::device::DeviceSelector;
use sotto::audio::wav::WavInput;
use sotto::audio::{SourceControl, SourceHandle, SourceInput};
use sotto::dsp::segmenter::SegmenterSettings;
use sotto::dsp::Dsp;
use sotto::event::{Event, State};
use sotto::transcribe::{Decoder, Transcriber, TranscriberCounters, TranscriberSetup};

use sotto_testkit::*;

const PROMPT: Duration = Duration::from_secs(2);

fn settings() -> SegmenterSettings {
    SegmenterSettings {
        vad_threshold: 0.5,
        min_speech_ms: 320,
        pre_roll_ms: 320,
        silence_ms: 500,
        max_utterance_ms: 20_000,
        end_of_speech: sotto::endpoint::EndOfSpeech::Fixed,
        min_silence_ms: 250,
        max_silence_ms: 900,
    }
}

/// A dsp thread with no input yet: the stream sender, the utterance
/// receiver, and its handle.
fn spawn_dsp() -> (
    crossbeam_channel::Sender<sotto::audio::CaptureStream>,
    crossbeam_channel::Receiver<sotto::pipeline::Job>,
    sotto::pipeline::WorkerThread,
) {
    let (stream_tx, stream_rx) = crossbeam_channel::bounded(1);
    let (utt_tx, utt_rx) = crossbeam_channel::bounded(1);
    // The event receiver is dropped: a closed event channel is not an error.
    let (ev_tx, _) = tokio::sync::mpsc::channel(16);
    let handle = Dsp {
        settings: settings(),
        streams: stream_rx,
        utterances: utt_tx,
        speculation: Default::default(),
        end_hint: Default::default(),
        hold: Default::default(),
        partials: None,
        events: ev_tx,
        counters: Default::default(),
        wait_when_full: false,
    }
    .spawn();
    (stream_tx, utt_rx, handle)
}

#[test]
fn the_dsp_thread_exits_when_its_source_closes() {
    let (stream_tx, utt_rx, handle) = spawn_dsp();
    let t = Instant::now();
    drop(stream_tx);
    handle.join();
    assert!(t.elapsed() < PROMPT, "dsp took {:?}", t.elapsed());
    assert!(
        utt_rx.recv().is_err(),
        "and its utterance sender is dropped"
    );
}

#[test]
fn the_dsp_thread_exits_when_an_idle_ring_is_abandoned() {
    let (stream_tx, _utt_rx, handle) = spawn_dsp();
    let (producer, consumer) = sotto::audio::capture::ring(48_000, 1.0);
    let doorbell = sotto::audio::capture::Doorbell::new(48_000);
    let writer = sotto::audio::capture::CaptureWriter::new(
        producer,
        1,
        Default::default(),
        doorbell.clone(),
    );
    stream_tx
        .send(sotto::audio::CaptureStream {
            consumer,
            sample_rate: 48_000,
            origin_ms: 0,
            doorbell,
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    // The writer's last ring wakes the waiting dsp thread: without it the
    // thread would wait out its limit (5 s, more than PROMPT).
    drop(writer);
    drop(stream_tx);
    handle.join();
    assert!(t.elapsed() < PROMPT, "dsp took {:?}", t.elapsed());
}

#[test]
fn the_whisper_thread_exits_when_its_queue_closes() {
    let decoder = Decoder::load(&model_path(), "en", 2).unwrap();
    let (utt_tx, utt_rx) = crossbeam_channel::bounded(1);
    let (ev_tx, _ev_rx) = tokio::sync::mpsc::channel(16);
    let transcriber = Transcriber::spawn(
        decoder,
        TranscriberSetup {
            jobs: utt_rx,
            events: ev_tx,
            max_latency_ms: 5_000,
            counters: Arc::new(TranscriberCounters::default()),
            speculation: Default::default(),
            stop: Default::default(),
            threads: 2,
            end_hint: Default::default(),
            language: "en".into(),
            // The loop that also waits for interim snapshots ends the same way.
            partials: Some(Default::default()),
        },
    );
    let t = Instant::now();
    drop(utt_tx);
    transcriber.join();
    // The thread's first act is its warm-up decode (0.2 s here when idle,
    // several times that on a loaded machine), which it finishes before it
    // sees the closed queue; a thread that missed the close never returns.
    let prompt = PROMPT * 5;
    assert!(
        t.elapsed() < prompt,
        "whisper thread took {:?}",
        t.elapsed()
    );
}

#[test]
fn sottod_stops_on_sigterm_and_sigint_with_exit_zero() {
    model_path();
    let dir = scratch();
    let wav = dir.path().join("long.wav");
    let mut s = Session::new(16_000);
    s.silence(60.0);
    s.write(&wav);
    for sig in [15, 2] {
        let bus = PrivateBus::start();
        let child = sottod(&bus)
            .args(["--input-file", wav.to_str().unwrap()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        let t = Instant::now();
        signal(&child, sig);
        let run = wait_output(child, Duration::from_secs(10));
        assert!(
            run.status.success(),
            "signal {sig}: {:?} {}",
            run.status,
            run.stderr
        );
        assert!(t.elapsed() < PROMPT, "signal {sig}: took {:?}", t.elapsed());
    }
}

/// A source started on `input`, with its stream receiver (kept open) and
/// the events it sent before `settle`.
fn start_source(input: SourceInput, settle: Duration) -> (SourceHandle, Vec<Event>) {
    let (stream_tx, stream_rx) = crossbeam_channel::bounded(2);
    let (ev_tx, mut ev_rx) = tokio::sync::mpsc::channel(64);
    let source = SourceHandle::start(
        input,
        SourceControl::default(),
        Default::default(),
        stream_tx,
        ev_tx,
    )
    .expect("source starts");
    // Drain rings so the source never waits on the dsp side.
    std::thread::spawn(move || while stream_rx.recv().is_ok() {});
    std::thread::sleep(settle);
    let mut events = Vec::new();
    while let Ok(e) = ev_rx.try_recv() {
        events.push(e);
    }
    (source, events)
}

#[test]
fn the_wav_reader_exits_when_its_handle_is_dropped() {
    let dir = scratch();
    let wav = dir.path().join("long.wav");
    Session::new(16_000).silence(60.0).write(&wav);
    let input = SourceInput::File {
        wav: WavInput::open(&wav).unwrap(),
        paced: true,
    };
    let (source, events) = start_source(input, Duration::from_millis(300));
    assert!(
        events.contains(&Event::State(State::Listening)),
        "{events:?}"
    );
    let t = Instant::now();
    drop(source);
    assert!(t.elapsed() < PROMPT, "wav reader took {:?}", t.elapsed());
}

#[test]
fn the_device_supervisor_exits_when_its_handle_is_dropped() {
    // No sound server: the default device is missing and the supervisor
    // waits in its retry loop.
    let mic = VirtualMic::without_server();
    let _env = mic.apply_env();
    let (source, events) = start_source(
        SourceInput::Device(DeviceSelector::Default(Default::default())),
        Duration::from_millis(600),
    );
    assert!(
        events.contains(&Event::State(State::NoDevice))
            || events.contains(&Event::State(State::Listening)),
        "{events:?}"
    );
    let t = Instant::now();
    drop(source);
    assert!(
        t.elapsed() < PROMPT,
        "device supervisor took {:?}",
        t.elapsed()
    );
}
