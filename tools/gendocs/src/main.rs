//! `sotto-gendocs`: writes what is made from the clap definitions of sottod,
//! sotto and sotto-convert: man pages and shell completions (`make docs`,
//! into target/docs), and the services' environment file
//! (`--env-file systemd/sotto.default`).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;
use sotto::cli::{Cli, ClientArgs, ConvertArgs};

/// What each page adds to the flags: where its files are, its relatives.
fn extra(name: &str) -> &'static str {
    match name {
        "sottod" => {
            ".SH FILES\n\
             .TP\n/etc/default/sotto\n\
             The system service's settings: SOTTO_* variables, one per flag (the shipped file lists them all).\n\
             .TP\n~/.config/sotto/env\n\
             The user service's settings, in the same form.\n\
             .TP\n/usr/share/sotto/models/\n\
             The installed models; ggml-tiny.en.bin is the default.\n\
             .TP\n/usr/share/dbus-1/interfaces/org.sotto.Sotto1.xml\n\
             The D-Bus interface sottod serves at /org/sotto/Sotto1.\n\
             .SH EXIT STATUS\n\
             0 when stopped by SIGTERM or SIGINT, or at the end of an --input-file; \
             1 on an error, printed as one line that names the problem and the fix; \
             2 for flags that do not parse.\n\
             .SH SEE ALSO\n\\fBsotto\\fR(1), \\fBsotto-convert\\fR(1), \\fBsystemctl\\fR(1)\n"
        }
        "sotto" => {
            ".SH EXIT STATUS\n\
             0 on success; 1 when sottod cannot be reached or refuses, or (once, hold) \
             when nothing was heard; 2 for arguments that do not parse.\n\
             .SH SEE ALSO\n\\fBsottod\\fR(1), \\fBbusctl\\fR(1), \\fBgdbus\\fR(1)\n"
        }
        _ => ".SH SEE ALSO\n\\fBsottod\\fR(1)\n",
    }
}

fn commands() -> [clap::Command; 3] {
    [
        Cli::command(),
        ClientArgs::command(),
        ConvertArgs::command(),
    ]
}

fn write_docs(out: &Path) -> std::io::Result<()> {
    let man = out.join("man").join("man1");
    fs::create_dir_all(&man)?;
    for cmd in commands() {
        let name = cmd.get_name().to_owned();
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd.clone())
            .manual("sotto")
            .render(&mut page)?;
        page.extend_from_slice(extra(&name).as_bytes());
        fs::write(man.join(format!("{name}.1")), page)?;
        for (shell, dir, file) in [
            (Shell::Bash, "bash", name.clone()),
            (Shell::Zsh, "zsh", format!("_{name}")),
            (Shell::Fish, "fish", format!("{name}.fish")),
        ] {
            let dir = out.join("completions").join(dir);
            fs::create_dir_all(&dir)?;
            let mut text = Vec::new();
            clap_complete::generate(shell, &mut cmd.clone(), &name, &mut text);
            fs::File::create(dir.join(file))?.write_all(&text)?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [flag, file] if flag == "--env-file" => fs::write(file, sotto::cli::env_file()),
        [out] if !out.starts_with('-') => write_docs(&PathBuf::from(out)),
        _ => {
            eprintln!(
                "sotto-gendocs: error: give an output folder (man pages, completions) or --env-file FILE"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sotto-gendocs: error: {e}");
            ExitCode::FAILURE
        }
    }
}
