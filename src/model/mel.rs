//! Mel filter bank as librosa's `filters.mel(sr, n_fft, n_mels)` with the Slaney
//! scale and Slaney area normalisation, which is what Whisper was trained with.

/// Slaney mel scale: linear below 1 kHz, logarithmic above.
const F_SP: f64 = 200.0 / 3.0;
const MIN_LOG_HZ: f64 = 1000.0;
const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;

fn log_step() -> f64 {
    6.4f64.ln() / 27.0
}

pub fn hz_to_mel(hz: f64) -> f64 {
    if hz >= MIN_LOG_HZ {
        MIN_LOG_MEL + (hz / MIN_LOG_HZ).ln() / log_step()
    } else {
        hz / F_SP
    }
}

pub fn mel_to_hz(mel: f64) -> f64 {
    if mel >= MIN_LOG_MEL {
        MIN_LOG_HZ * (log_step() * (mel - MIN_LOG_MEL)).exp()
    } else {
        F_SP * mel
    }
}

/// `n_mels` × (`n_fft`/2 + 1) weights, row-major, as f32.
pub fn mel_filters(sample_rate: u32, n_fft: usize, n_mels: usize) -> Vec<f32> {
    let n_bins = n_fft / 2 + 1;
    let nyquist = f64::from(sample_rate) / 2.0;
    let fft_freqs: Vec<f64> = (0..n_bins)
        .map(|i| nyquist * i as f64 / (n_bins - 1) as f64)
        .collect();
    let (mel_min, mel_max) = (hz_to_mel(0.0), hz_to_mel(nyquist));
    let mel_f: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(mel_min + (mel_max - mel_min) * i as f64 / (n_mels + 1) as f64))
        .collect();
    let mut weights = vec![0.0f32; n_mels * n_bins];
    for m in 0..n_mels {
        let (lo, center, hi) = (mel_f[m], mel_f[m + 1], mel_f[m + 2]);
        let enorm = 2.0 / (hi - lo);
        for (b, &f) in fft_freqs.iter().enumerate() {
            let lower = (f - lo) / (center - lo);
            let upper = (hi - f) / (hi - center);
            weights[m * n_bins + b] = (lower.min(upper).max(0.0) * enorm) as f32;
        }
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_round_trips_and_is_linear_below_1khz() {
        assert!((hz_to_mel(500.0) - 7.5).abs() < 1e-12);
        for hz in [0.0, 300.0, 1000.0, 4000.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 1e-9, "{hz}");
        }
    }

    #[test]
    fn filters_match_librosa_reference_values() {
        // librosa.filters.mel(sr=16000, n_fft=400, n_mels=80): a few entries.
        let f = mel_filters(16_000, 400, 80);
        assert_eq!(f.len(), 80 * 201);
        // Filter 0 spans 0 Hz .. f2 with its peak at f1 (37.2 Hz); bin 1 (40 Hz)
        // is on its falling slope: (f2 - 40) / (f2 - f1), scaled by 2 / (f2 - 0).
        let step = hz_to_mel(8000.0) / 81.0;
        let (f1, f2) = (mel_to_hz(step), mel_to_hz(2.0 * step));
        assert!((f1 - 37.24).abs() < 0.01, "{f1}");
        let expected = (f2 - 40.0) / (f2 - f1) * 2.0 / f2;
        assert!(
            (f64::from(f[1]) - expected).abs() < 1e-7,
            "{} vs {expected}",
            f[1]
        );
        assert!((f[1] - 0.024_862_6).abs() < 1e-6);
        assert_eq!(f[0], 0.0);
        // Every filter has weight somewhere; each row's area is normalised.
        for m in 0..80 {
            assert!(
                f[m * 201..(m + 1) * 201].iter().any(|w| *w > 0.0),
                "filter {m} empty"
            );
        }
    }
}
