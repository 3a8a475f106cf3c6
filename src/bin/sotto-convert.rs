//! `sotto-convert`: a CTranslate2 (faster-whisper) Whisper model folder to a
//! whisper.cpp ggml file, optionally quantised; or a ggml file quantised.

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use sotto::cli::ConvertArgs as Args;
use sotto::model::convert::{convert_dir, Converted};
use sotto::model::quantize::{quantize_file, Quant};

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => return sotto::cli::exit_for_clap_error(e, "sotto-convert"),
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sotto-convert: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let quant = args.quantize.map(Quant::from);
    if args.model_dir.is_file() {
        let Some(quant) = quant else {
            return Err(format!(
                "{} is a file; give the CTranslate2 model's folder to convert it, or add --quantize q8_0 (or q5_0) to quantise a ggml model",
                args.model_dir.display()
            ));
        };
        return quantize(&args.model_dir, &args.output, quant);
    }
    let Some(quant) = quant else {
        let c = convert_dir(&args.model_dir, &args.output).map_err(|e| e.to_string())?;
        report(&args.output, &c);
        return Ok(());
    };
    // Convert to f16 beside the output, then quantise that.
    let f16 = args.output.with_extension("f16.partial");
    let converted = convert_dir(&args.model_dir, &f16).map_err(|e| e.to_string());
    let result = converted.and_then(|c| {
        report(&f16, &c);
        quantize(&f16, &args.output, quant)
    });
    let _ = std::fs::remove_file(&f16);
    result
}

fn report(output: &Path, c: &Converted) {
    println!(
        "wrote {} ({} bytes): {} tensors, {} audio / {} text layers, width {}, {} mels, {}",
        output.display(),
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
}

fn quantize(input: &Path, output: &Path, quant: Quant) -> Result<(), String> {
    let q = quantize_file(input, output, quant).map_err(|e| e.to_string())?;
    println!(
        "wrote {} ({} bytes): {}, {} of {} tensors quantised",
        output.display(),
        q.bytes,
        quant.name(),
        q.quantised,
        q.tensors
    );
    Ok(())
}
