//! `relayform validate`.

use crate::cli::ValidateArgs;
use anstyle::{AnsiColor, Style};
use relayform_spec::{Diagnostic, Severity};
use serde_json::json;
use std::io::Write;

/// The version of the `--json` document; bumped on incompatible changes.
pub(crate) const FORMAT_VERSION: u32 = 1;

pub(crate) fn run(
    args: &ValidateArgs,
    out: &mut dyn Write,
    _err: &mut dyn Write,
) -> anyhow::Result<u8> {
    let paths = crate::load::find(&args.paths)?;
    let files = crate::load::read(&paths)?;
    let checked = relayform_spec::check(&files);
    let errors = checked.diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = checked.diagnostics.len() - errors;
    if args.json {
        let doc = json!({
            "format_version": FORMAT_VERSION,
            "valid": errors == 0,
            "files": files.iter().map(|f| &f.path).collect::<Vec<_>>(),
            "error_count": errors,
            "warning_count": warnings,
            "diagnostics": checked.diagnostics,
        });
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        writeln!(out)?;
    } else {
        for d in &checked.diagnostics {
            render(d, &files, out)?;
        }
        let files_word = plural(files.len(), "file");
        if errors == 0 {
            let s = &checked.spec;
            let green = Style::new().bold().fg_color(Some(AnsiColor::Green.into()));
            writeln!(
                out,
                "{green}valid{green:#}: {files_word}, {}, {}, {}{}",
                plural(s.orgs.len(), "org"),
                plural(s.aws_accounts.len(), "aws account"),
                plural(s.relays.len(), "relay"),
                if warnings > 0 {
                    format!(", {}", plural(warnings, "warning"))
                } else {
                    String::new()
                },
            )?;
        } else {
            writeln!(
                out,
                "{} in {files_word}{}",
                plural(errors, "error"),
                if warnings > 0 {
                    format!(", {}", plural(warnings, "warning"))
                } else {
                    String::new()
                },
            )?;
        }
    }
    Ok(if errors == 0 { 0 } else { 1 })
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// `file:line:column: error: message`, and the hint on its own line.
/// One diagnostic: `file:line:col: error: message`, then the source line with a caret under the
/// column (as rustc shows them), then the hint. A line that may hold a credential (the diagnostic
/// is about one, or the line names a secret-like key) is not shown, and any shown is redacted.
pub(crate) fn render(
    d: &Diagnostic,
    files: &[relayform_spec::SourceFile],
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let color = match d.severity {
        Severity::Error => AnsiColor::Red,
        Severity::Warning => AnsiColor::Yellow,
    };
    let sev = Style::new().bold().fg_color(Some(color.into()));
    let bold = Style::new().bold();
    writeln!(
        out,
        "{bold}{}{bold:#}: {sev}{}{sev:#}: {}",
        d.location, d.severity, d.message
    )?;
    if let Some(line) = files
        .iter()
        .find(|f| f.path == d.location.file)
        .and_then(|f| f.text.lines().nth(d.location.line.saturating_sub(1)))
    {
        let lower = line.to_ascii_lowercase();
        let secretive = d.code == "literal-secret"
            || ["password", "secret", "token", "private_key", "access_key"]
                .iter()
                .any(|k| lower.contains(k));
        if !secretive && !line.trim().is_empty() && line.len() <= 300 {
            let number = d.location.line.to_string();
            let pad = " ".repeat(number.len());
            let blue = Style::new().bold().fg_color(Some(AnsiColor::Blue.into()));
            // The caret under the column, tabs kept so that it lines up.
            let under: String = line
                .chars()
                .take(d.location.column.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let shown = relayform_spec::rules::redact(line);
            writeln!(out, "{blue}{number} |{blue:#} {shown}")?;
            writeln!(out, "{blue}{pad} |{blue:#} {under}{sev}^{sev:#}")?;
        }
    }
    if let Some(hint) = &d.hint {
        let cyan = Style::new().bold().fg_color(Some(AnsiColor::Cyan.into()));
        writeln!(out, "  {cyan}hint{cyan:#}: {hint}")?;
    }
    Ok(())
}
