//! One-line clap errors, for all three binaries.

/// Prints a clap error as one line naming the problem and the fix (help and
/// version print normally) and returns the exit code. clap's hints stay on
/// the line: the possible values and its "a similar … exists" tip.
/// `annotate` may add to the line (sottod names variables).
pub fn exit_for(
    error: clap::Error,
    program: &str,
    annotate: impl Fn(&str) -> String,
) -> std::process::ExitCode {
    use clap::error::ErrorKind;
    match error.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = error.print();
            std::process::ExitCode::SUCCESS
        }
        _ => {
            let line = annotate(&one_line(&error.render().to_string()));
            eprintln!("{program}: error: {line}; run `{program} --help` for the flags");
            std::process::ExitCode::from(2)
        }
    }
}

/// clap's rendered error as one line: its first line, then the possible
/// values and tips it gives below, in parentheses; usage and the `--help`
/// pointer are left out (the caller adds its own).
fn one_line(rendered: &str) -> String {
    let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines
        .next()
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ")
        .to_owned();
    let hints: Vec<String> = lines
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter_map(|l| {
            if let Some(values) = l.strip_prefix("[possible values: ") {
                Some(format!("possible values: {}", values.trim_end_matches(']')))
            } else {
                l.strip_prefix("tip: ").map(str::to_owned)
            }
        })
        .collect();
    if hints.is_empty() {
        first
    } else {
        format!("{first} ({})", hints.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_hints_stay_on_the_one_line() {
        let rendered = "error: invalid value 'sesion' for '--bus <BUS>'\n  [possible values: session, system]\n\n  tip: a similar value exists: 'session'\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line(rendered),
            "invalid value 'sesion' for '--bus <BUS>' (possible values: session, system; a similar value exists: 'session')"
        );
        let rendered = "error: unexpected argument '--jsn' found\n\n  tip: a similar argument exists: '--json'\n\nUsage: sottod --json\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line(rendered),
            "unexpected argument '--jsn' found (a similar argument exists: '--json')"
        );
        assert_eq!(one_line("error: plain\n"), "plain");
    }
}
