//! Memory stays flat over a long run: a session from ../shared/testdata
//! fast-forwarded with `--no-pace`. `SOTTO_SOAK_SECONDS` sets its length
//! (default 180 s, passes over six speech clips; `make soak` runs 3600 s over all
//! of them, comparing RSS after the first five minutes with RSS at the end).

use sotto_testkit::*;

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
    let run = LongRun::measure(seconds, clips);
    if std::env::var_os("SOTTO_SOAK_TRACE").is_some() {
        for (p, r) in &run.samples {
            eprintln!("{p:.0}\t{r}");
        }
    }
    let growth = run.growth_kib();
    eprintln!(
        "RSS: start {} KiB, at {:.0} s {} KiB, peak after it {} KiB: growth {growth} KiB over {:.0} s of audio ({} utterances)",
        run.start_kib,
        run.reference_s,
        run.reference_kib,
        run.peak_kib,
        run.end_s - run.reference_s,
        run.utterances
    );
    assert!(
        growth <= 2048,
        "RSS grew by {growth} KiB between {:.0} s and {:.0} s of audio",
        run.reference_s,
        run.end_s
    );
}
