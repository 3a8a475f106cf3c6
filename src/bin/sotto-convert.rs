//! `sotto-convert`: a CTranslate2 (faster-whisper) Whisper model folder to a
//! whisper.cpp ggml file.

use std::process::ExitCode;

use clap::Parser;
use sotto::cli::ConvertArgs as Args;

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => return sotto::cli::exit_for_clap_error(e, "sotto-convert"),
    };
    match sotto::model::convert::convert_dir(&args.model_dir, &args.output) {
        Ok(c) => {
            println!(
                "wrote {} ({} bytes): {} tensors, {} audio / {} text layers, width {}, {} mels, {}",
                args.output.display(),
                c.bytes,
                c.n_tensors,
                c.n_audio_layer,
                c.n_text_layer,
                c.n_state,
                c.n_mels,
                if c.multilingual {
                    "multilingual"
                } else {
                    "English-only"
                }
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sotto-convert: error: {e}");
            ExitCode::FAILURE
        }
    }
}
