//! Ways of listening, measured. Partials: long espeak-ng sentences played
//! paced with and without `--partials` (alternating runs): the interval
//! between Partials and the first one's delay after the onset (on a real
//! client's clock), sottod's CPU per second of speech, and the final
//! latency p50 / p95 with and without. Push-to-talk: presses on a
//! PulseAudio virtual microphone, StartUtterance to a playing stream.
//! Wake phrase: hit and false rates over the wake session (two voices).
//! `BENCH_SMOKE=1`: one run each, three presses, no wake session.

#[path = "common/report.rs"]
mod report;

use std::time::Duration;

use serde_json::{json, Value};

use report::{percentile, row, smoke, write_part};
use sotto_testkit::*;

const LONG: [&str; 3] = [
    "please turn on the kitchen lights and then play some quiet music in the living room",
    "remind me tomorrow morning at eight to call the dentist about my appointment",
    "set a timer for twenty minutes and tell me when the oven is ready for the bread",
];

/// One paced run: (final latencies, partial gaps ms, first-partial delays
/// ms, CPU seconds per second of speech).
fn partial_run(
    wav: &std::path::Path,
    speech_s: f64,
    partials: bool,
) -> (Vec<f64>, Vec<f64>, Vec<f64>, f64) {
    let bus = PrivateBus::start();
    let mut cmd = sottod(&bus);
    cmd.args(["--input-file", wav.to_str().unwrap(), "--json"]);
    if partials {
        cmd.arg("--partials");
    }
    let mut daemon = LiveDaemon::spawn(cmd);
    bus.wait_for_name();
    let (client, received) = timed_listener(&bus);
    for _ in LONG {
        daemon.wait_event(|e| e["event"] == "transcript", Duration::from_secs(60));
    }
    let cpu_s = daemon.cpu_ticks() as f64 / ticks_per_second();
    let run = daemon.wait_exit(Duration::from_secs(60));
    assert!(run.status.success(), "{}", run.stderr);
    signal(&client, libc::SIGTERM);
    let got: Vec<Received> = received.try_iter().collect();
    let events = run.events();
    let latencies = events
        .iter()
        .filter(|e| e["event"] == "transcript")
        .map(|e| e["latency_ms"].as_f64().unwrap())
        .collect();
    let (mut gaps, mut firsts) = (Vec::new(), Vec::new());
    for (id, start, _) in utterances(&events) {
        let times: Vec<f64> = got
            .iter()
            .filter(|r| r.event["event"] == "partial" && r.event["id"] == id)
            .map(|r| r.at_ms)
            .collect();
        if let Some(first) = times.first() {
            firsts.push(first - start as f64);
        }
        gaps.extend(times.windows(2).map(|w| w[1] - w[0]));
    }
    (latencies, gaps, firsts, cpu_s / speech_s)
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

fn main() {
    model_path();
    let dir = scratch();
    let mut rows = Vec::new();
    let mut data = json!({});

    // Partials.
    let wav = dir.path().join("long.wav");
    let mut s = Session::new(ESPEAK_RATE);
    s.silence(1.0);
    for text in LONG {
        s.say(text).silence(2.0);
    }
    s.write(&wav);
    let speech_s: f64 = s
        .truth
        .iter()
        .map(|(_, a, b)| (b - a) as f64 / 1000.0)
        .sum();
    let runs = if smoke() { 1 } else { 3 };
    let (mut with, mut without) = (Vec::new(), Vec::new());
    let (mut gaps, mut firsts, mut cpu_with, mut cpu_without) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let (l, g, f, c) = partial_run(&wav, speech_s, true);
        with.extend(l);
        gaps.extend(g);
        firsts.extend(f);
        cpu_with.push(c);
        let (l, _, _, c) = partial_run(&wav, speech_s, false);
        without.extend(l);
        cpu_without.push(c);
    }
    let (with, without, gaps, firsts) =
        (sorted(with), sorted(without), sorted(gaps), sorted(firsts));
    let (cpu_with, cpu_without) = (sorted(cpu_with), sorted(cpu_without));
    let extra = percentile(&with, 50.0) - percentile(&without, 50.0);
    rows.push(row(
        "partials: interval p50 / max, first after the onset p50 / max",
        format!(
            "{:.0} / {:.0} ms, {:.0} / {:.0} ms",
            percentile(&gaps, 50.0),
            percentile(&gaps, 100.0),
            percentile(&firsts, 50.0),
            percentile(&firsts, 100.0)
        ),
        "first ≤ 1500 ms",
        Some(percentile(&firsts, 100.0) <= 1500.0),
    ));
    rows.push(row(
        "partials: sottod CPU per second of speech, with / without",
        format!(
            "{:.2} / {:.2} s",
            percentile(&cpu_with, 50.0),
            percentile(&cpu_without, 50.0)
        ),
        "",
        None,
    ));
    rows.push(row(
        format!("partials: final latency p50 / p95 with, without ({runs} runs each)"),
        format!(
            "{:.0} / {:.0} ms, {:.0} / {:.0} ms ({extra:+.0} ms)",
            percentile(&with, 50.0),
            percentile(&with, 95.0),
            percentile(&without, 50.0),
            percentile(&without, 95.0)
        ),
        "p50 no more than +30 ms",
        Some(extra <= 30.0),
    ));
    data["partials"] = json!({
        "latency_with_ms": with, "latency_without_ms": without, "gaps_ms": gaps,
        "first_ms": firsts, "cpu_per_speech_s_with": cpu_with, "cpu_per_speech_s_without": cpu_without,
    });

    // Push-to-talk.
    let mic = VirtualMic::start();
    let mut cmd = mic.sottod();
    cmd.args(["--mode", "push-to-talk"]);
    let daemon = LiveDaemon::spawn(cmd);
    mic.bus.wait_for_name();
    mic.bus.wait_for_state("paused", Duration::from_secs(30));
    let presses = if smoke() { 3 } else { 20 };
    for _ in 0..presses {
        mic.bus.call("StartUtterance");
        std::thread::sleep(Duration::from_millis(200));
        mic.bus.call("EndUtterance");
        std::thread::sleep(Duration::from_millis(300));
    }
    let (run, _) = daemon.stop(libc::SIGTERM, Duration::from_secs(10));
    let open_ms: Vec<f64> = push_to_talk_open_ms(&run.stderr)
        .into_iter()
        .map(|ms| ms as f64)
        .collect();
    assert_eq!(open_ms.len(), presses, "{}", run.stderr);
    rows.push(row(
        format!("push-to-talk: StartUtterance to a playing stream p50 / max ({presses} presses, PulseAudio)"),
        format!(
            "{:.0} / {:.0} ms",
            percentile(&open_ms, 50.0),
            percentile(&open_ms, 100.0)
        ),
        "",
        None,
    ));
    data["push_to_talk_open_ms"] = json!(open_ms);

    // Wake phrase.
    if !smoke() {
        let wav = dir.path().join("wake.wav");
        let (s, addressed) = wake_session();
        s.write(&wav);
        let run = run_sottod(
            &[
                "--input-file",
                wav.to_str().unwrap(),
                "--no-pace",
                "--json",
                "--wake-phrase",
                WAKE_PHRASE,
            ],
            Duration::from_secs(300),
        );
        assert!(run.status.success(), "{}", run.stderr);
        let events: Vec<Value> = run.events();
        let outcome = per_sentence(&s, &events, run.file_origin_ms());
        let published = |evs: &Vec<&Value>| evs.iter().any(|e| e["event"] == "transcript");
        let (mut hits, mut n_addressed, mut false_alarms, mut n_other) = (0, 0, 0, 0);
        for (is_addressed, evs) in addressed.iter().zip(&outcome) {
            if *is_addressed {
                n_addressed += 1;
                hits += usize::from(published(evs));
            } else {
                n_other += 1;
                false_alarms += usize::from(published(evs));
            }
        }
        rows.push(row(
            format!("wake phrase {WAKE_PHRASE:?}: hit rate, false rate (2 voices)"),
            format!("{hits}/{n_addressed}, {false_alarms}/{n_other}"),
            "",
            None,
        ));
        data["wake"] = json!({"hits": hits, "addressed": n_addressed, "false": false_alarms, "other": n_other});
    }
    write_part("interaction", &rows, data);
}
