//! `--input-file`: a WAV file played into the same ring and dsp thread as a
//! microphone, paced in real time or as fast as the pipeline takes it.

use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::TryRecvError;

use super::capture::{self, CaptureCounters, CaptureWriter};
use super::{CaptureStream, SourceCommand, SourceLinks, RING_SECONDS};
use crate::event::{send_blocking, ErrorKind, Event, State};
use crate::pipeline::now_ms;

/// Sample rates accepted: telephone speech to high-resolution studio audio.
/// The rate sizes the ring and the resampler, so a header's absurd rate must
/// never reach them.
pub const MIN_RATE: u32 = 8_000;
pub const MAX_RATE: u32 = 384_000;
/// Channels accepted (they are mixed down to mono).
pub const MAX_CHANNELS: u16 = 32;

/// Errors opening or reading a WAV file. Each message names the file and a fix.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    #[error("cannot read {path}: {reason} (check the path given to --input-file)")]
    Open { path: PathBuf, reason: String },
    #[error("{path} is not a WAV file ({reason}); convert it first, e.g. `sox {} -r 16000 -c 1 out.wav`", shell_word(path))]
    NotWav { path: PathBuf, reason: String },
    #[error("{path} is an unsupported WAV ({reason}); use PCM 8/16/24/32-bit or 32-bit float, e.g. `sox {} -b 16 -r 16000 -c 1 out.wav`", shell_word(path))]
    Unsupported { path: PathBuf, reason: String },
    #[error("{path} cannot be played: {reason}; resample or mix it down first, e.g. `sox {} -r 16000 -c 1 out.wav`", shell_word(path))]
    Layout { path: PathBuf, reason: String },
    #[error("{path} is truncated: its header promises {promised} bytes of audio but only {present} are there; re-export or re-copy the file")]
    Truncated {
        path: PathBuf,
        promised: u64,
        present: u64,
    },
    #[error("{path} has no audio frames; give a WAV file with sound in it")]
    Empty { path: PathBuf },
}

/// `path` as one word a shell reads back as it is (quoted when it needs it),
/// for the commands the errors suggest.
fn shell_word(path: &Path) -> String {
    let text = path.display().to_string();
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@%".contains(c))
    {
        text
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// "mono", "stereo" or "N channels".
fn channels_text(n: u16) -> String {
    match n {
        1 => "mono".into(),
        2 => "stereo".into(),
        n => format!("{n} channels"),
    }
}

/// A checked WAV file: the header is read and the data length matches the file.
pub struct WavInput {
    path: PathBuf,
    reader: hound::WavReader<BufReader<File>>,
}

impl WavInput {
    /// Opens and checks the file; all problems are found here, before the daemon starts.
    pub fn open(path: &Path) -> Result<Self, WavError> {
        let file = File::open(path).map_err(|e| WavError::Open {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
            return Err(WavError::Open {
                path: path.to_path_buf(),
                reason: "it is a directory".into(),
            });
        }
        let file_len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let reader = hound::WavReader::new(BufReader::new(file)).map_err(|e| match e {
            hound::Error::Unsupported => WavError::Unsupported {
                path: path.to_path_buf(),
                reason: "encoding not supported".into(),
            },
            hound::Error::IoError(io) => WavError::NotWav {
                path: path.to_path_buf(),
                reason: format!("header unreadable: {io}"),
            },
            other => WavError::NotWav {
                path: path.to_path_buf(),
                reason: other.to_string(),
            },
        })?;
        let spec = reader.spec();
        let supported = match spec.sample_format {
            hound::SampleFormat::Int => matches!(spec.bits_per_sample, 8 | 16 | 24 | 32),
            hound::SampleFormat::Float => spec.bits_per_sample == 32,
        };
        if !(MIN_RATE..=MAX_RATE).contains(&spec.sample_rate) {
            return Err(WavError::Layout {
                path: path.to_path_buf(),
                reason: format!(
                    "its sample rate is {} Hz, outside {MIN_RATE}–{MAX_RATE} Hz",
                    spec.sample_rate
                ),
            });
        }
        if spec.channels > MAX_CHANNELS {
            return Err(WavError::Layout {
                path: path.to_path_buf(),
                reason: format!(
                    "it has {} channels, more than {MAX_CHANNELS}",
                    spec.channels
                ),
            });
        }
        if !supported || spec.channels == 0 {
            return Err(WavError::Unsupported {
                path: path.to_path_buf(),
                reason: format!(
                    "{}, {} Hz, {}-bit {:?}",
                    channels_text(spec.channels),
                    spec.sample_rate,
                    spec.bits_per_sample,
                    spec.sample_format
                ),
            });
        }
        if reader.len() == 0 {
            return Err(WavError::Empty {
                path: path.to_path_buf(),
            });
        }
        // hound only notices a short data chunk when it gets there; check up front
        // so a truncated file is refused instead of half-played.
        let bytes_per_sample = u64::from(spec.bits_per_sample).div_ceil(8);
        let promised = u64::from(reader.len()) * bytes_per_sample;
        let mut inner = reader.into_inner();
        let data_start = inner.stream_position().unwrap_or(0);
        let present = file_len.saturating_sub(data_start);
        if present < promised {
            return Err(WavError::Truncated {
                path: path.to_path_buf(),
                promised,
                present,
            });
        }
        inner.seek(SeekFrom::Start(0)).map_err(|e| WavError::Open {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let reader = hound::WavReader::new(inner).map_err(|e| WavError::NotWav {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            reader,
        })
    }

    /// Sample rate of the file.
    pub fn sample_rate(&self) -> u32 {
        self.reader.spec().sample_rate
    }

    /// Duration of the file in seconds.
    pub fn seconds(&self) -> f64 {
        self.reader.duration() as f64 / self.sample_rate() as f64
    }

    /// Reads every sample (interleaved, -1..1) on the calling thread: what the
    /// player thread does, without the pacing. For checks and the fuzz tests.
    pub fn read_all(mut self) -> Result<Vec<f32>, WavError> {
        let n = self.reader.len() as usize;
        let mut out = Vec::with_capacity(n.min(1 << 24));
        SampleReader::new(&mut self.reader)
            .read_into(n, &mut out)
            .map_err(|e| WavError::NotWav {
                path: self.path.clone(),
                reason: e.to_string(),
            })?;
        Ok(out)
    }

    /// Plays the file on its own thread into a fresh ring, announced on `streams`.
    /// Paced: one 10 ms block per 10 ms of wall time; unpaced: as fast as the dsp
    /// thread reads (it waits when the ring is full, so nothing is lost). At the end
    /// of the file, or on `Stop`, the thread ends and closes the ring and `streams`.
    pub fn spawn(self, paced: bool, links: SourceLinks) -> JoinHandle<()> {
        std::thread::Builder::new()
            .name("wav-reader".into())
            .spawn(move || self.play(paced, links))
            .expect("spawn wav reader thread")
    }

    fn play(mut self, paced: bool, links: SourceLinks) {
        let SourceLinks {
            counters,
            streams,
            events,
            commands,
        } = links;
        let spec = self.reader.spec();
        let rate = spec.sample_rate;
        let channels = spec.channels as usize;
        // A stream per stretch of playing, as on a microphone: a Pause ends
        // the stream (the dsp thread reads what is in the ring, then closes
        // an open utterance), a Resume starts a new one whose first frame is
        // at the moment of the Resume on the capture clock. The file itself
        // goes on where it stopped: nothing in it is skipped.
        let open = |counters: &Arc<CaptureCounters>, how: &str| -> Option<CaptureWriter> {
            let (producer, consumer) = capture::ring(rate, RING_SECONDS);
            let origin_ms = now_ms();
            let doorbell = capture::Doorbell::new(rate);
            streams
                .send(CaptureStream {
                    consumer,
                    sample_rate: rate,
                    origin_ms,
                    doorbell: doorbell.clone(),
                })
                .ok()?;
            log::info!("input file {how} from capture clock {origin_ms} ms");
            Some(CaptureWriter::new(producer, 1, counters.clone(), doorbell))
        };
        let Some(mut writer) = open(&counters, "plays") else {
            return;
        };
        send_blocking(&events, Event::State(State::Listening));

        let frames_per_block = (rate as usize / 100).max(1);
        let mut interleaved: Vec<f32> = Vec::with_capacity(frames_per_block * channels);
        let mut mono: Vec<f32> = Vec::with_capacity(frames_per_block);
        let mut samples = SampleReader::new(&mut self.reader);
        let started = Instant::now();
        let mut frames_sent: u64 = 0;
        let mut paused_for = Duration::ZERO;
        loop {
            match commands.try_recv() {
                Err(TryRecvError::Disconnected) => break,
                Ok(SourceCommand::Pause(reply)) => {
                    let pause_start = Instant::now();
                    // Closing the ring is what closes the stream.
                    drop(writer);
                    let _ = reply.send(Ok(()));
                    send_blocking(&events, Event::State(State::Paused));
                    // Wait for a Resume; other Pauses are answered at once.
                    loop {
                        match commands.recv() {
                            Ok(SourceCommand::Resume(reply)) => {
                                let _ = reply.send(Ok(()));
                                break;
                            }
                            Ok(SourceCommand::Pause(reply)) => {
                                let _ = reply.send(Ok(()));
                            }
                            Err(_) => return,
                        }
                    }
                    paused_for += pause_start.elapsed();
                    writer = match open(&counters, "resumes") {
                        Some(w) => w,
                        None => return,
                    };
                    send_blocking(&events, Event::State(State::Listening));
                }
                Ok(SourceCommand::Resume(reply)) => {
                    let _ = reply.send(Ok(()));
                }
                Err(TryRecvError::Empty) => {}
            }
            interleaved.clear();
            if let Err(e) = samples.read_into(frames_per_block * channels, &mut interleaved) {
                log::error!("{}: {e}; stopping at the error", self.path.display());
                send_blocking(
                    &events,
                    Event::Error {
                        kind: ErrorKind::InputFile,
                        message: format!("{}: {e}", self.path.display()),
                    },
                );
                break;
            }
            if interleaved.is_empty() {
                break;
            }
            mono.clear();
            let gain = 1.0 / channels as f32;
            mono.extend(
                interleaved
                    .chunks_exact(channels)
                    .map(|frame| frame.iter().sum::<f32>() * gain),
            );
            if paced {
                // Sleep until this block's place on the wall clock.
                let due = Duration::from_secs_f64(frames_sent as f64 / rate as f64) + paused_for;
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
            if !writer.write_all_blocking(&mono) {
                break;
            }
            frames_sent += mono.len() as u64;
        }
        log::debug!("{}: {frames_sent} frames played", self.path.display());
    }
}

/// Reads any supported sample format as `f32` in -1..1.
struct SampleReader<'a> {
    reader: &'a mut hound::WavReader<BufReader<File>>,
    float: bool,
    /// `1 / 2^(bits-1)` for integer formats.
    scale: f32,
}

impl<'a> SampleReader<'a> {
    fn new(reader: &'a mut hound::WavReader<BufReader<File>>) -> Self {
        let spec = reader.spec();
        Self {
            float: spec.sample_format == hound::SampleFormat::Float,
            scale: 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32,
            reader,
        }
    }

    fn read_into(&mut self, n: usize, out: &mut Vec<f32>) -> Result<(), hound::Error> {
        if self.float {
            for s in self.reader.samples::<f32>().take(n) {
                out.push(s?);
            }
        } else {
            let scale = self.scale;
            for s in self.reader.samples::<i32>().take(n) {
                out.push(s? as f32 * scale);
            }
        }
        Ok(())
    }
}
