//! Memory stays flat over a long run: a session from ../shared/testdata
//! fast-forwarded with `--no-pace`. `SOTTO_SOAK_SECONDS` sets its length
//! (default 180 s, passes over six speech clips; `make soak` runs 3600 s over all
//! of them, comparing RSS after the first five minutes with RSS at the end).

use std::time::Duration;

use crate::util::*;

fn soak_seconds() -> f64 {
    std::env::var("SOTTO_SOAK_SECONDS")
        .ok()
        .map(|s| {
            s.parse()
                .expect("SOTTO_SOAK_SECONDS must be a number of seconds")
        })
        .unwrap_or(180.0)
}

#[test]
fn memory_stays_flat_over_a_fast_forwarded_session() {
    model_path();
    let seconds = soak_seconds();
    // A short run repeats a short pass over a few clips; an hour uses them all.
    let clips = if seconds < 900.0 { Some(6) } else { None };
    let session = shared_session(seconds, clips);
    let total_s = session.audio.samples.len() as f64 / 16_000.0;
    // The reference point: after five minutes, and never before one whole pass
    // (the first pass meets every utterance length once).
    let reference_s = session.cycle_seconds.max((total_s / 3.0).min(300.0));
    let dir = scratch();
    let wav = dir.path().join("session.wav");
    write_wav(&wav, &session.audio);
    drop(session);

    let bus = PrivateBus::start();
    let mut cmd = sottod(&bus);
    cmd.args(["--input-file", wav.to_str().unwrap(), "--no-pace", "--json"]);
    let mut daemon = LiveDaemon::spawn(cmd);
    daemon.wait_log("plays from capture clock", Duration::from_secs(60));
    let origin = Run {
        status: std::process::ExitStatus::default(),
        stdout: String::new(),
        stderr: daemon.stderr.join("\n"),
    }
    .file_origin_ms();
    let rss_start = daemon.rss_kib();
    // (audio position s, RSS KiB) at every utterance's end.
    let mut samples: Vec<(f64, u64)> = Vec::new();
    let limit = Duration::from_secs_f64(60.0 + total_s);
    let started = std::time::Instant::now();
    let mut ends = std::collections::HashMap::new();
    while !daemon.exited() {
        assert!(started.elapsed() < limit, "the session did not finish");
        let Some(event) = daemon.try_event(
            |e| {
                matches!(
                    e["event"].as_str(),
                    Some("speech_ended" | "transcript" | "dropped")
                )
            },
            Duration::from_millis(200),
        ) else {
            continue;
        };
        if event["event"] == "speech_ended" {
            ends.insert(event["id"].as_u64(), event["end_ms"].as_u64().unwrap());
            continue;
        }
        let end_ms = ends.get(&event["id"].as_u64()).copied().unwrap_or(origin);
        let rss = daemon.rss_kib();
        if rss > 0 {
            samples.push((end_ms.saturating_sub(origin) as f64 / 1000.0, rss));
        }
    }
    let (run, _) = daemon.stop(15, Duration::from_secs(10));
    assert!(run.status.success(), "{}", run.stderr);
    let reference = samples
        .iter()
        .find(|(p, _)| *p >= reference_s)
        .copied()
        .expect("an utterance after the reference point");
    if std::env::var_os("SOTTO_SOAK_TRACE").is_some() {
        for (p, r) in &samples {
            eprintln!("{p:.0}\t{r}");
        }
    }
    let end = *samples.last().unwrap();
    // The highest RSS after the reference point, not just the last one (the
    // last utterances end while the input thread is already freeing its buffers).
    let peak = samples
        .iter()
        .filter(|(p, _)| *p >= reference.0)
        .map(|&(_, r)| r)
        .max()
        .unwrap();
    let growth = peak as i64 - reference.1 as i64;
    eprintln!(
        "RSS: start {} KiB, at {:.0} s {} KiB, at {:.0} s {} KiB, peak since the reference {peak} KiB: growth {growth} KiB over {:.0} s of audio ({} utterances)",
        rss_start,
        reference.0,
        reference.1,
        end.0,
        end.1,
        end.0 - reference.0,
        samples.len()
    );
    assert!(
        growth <= 2048,
        "RSS grew by {growth} KiB between {:.0} s and {:.0} s of audio",
        reference.0,
        end.0
    );
}
