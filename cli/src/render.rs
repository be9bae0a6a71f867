//! Rendering `lang` diagnostics as text with codespan-reporting: `file:line:col`, the
//! source line with a caret, the message and the notes. `lang` keeps diagnostics as
//! data; this is the only place that turns them into text.

use codespan_reporting::diagnostic::{
    Diagnostic as CsDiagnostic, Label as CsLabel, Severity as CsSeverity,
};
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term::termcolor::{Ansi, NoColor, WriteColor};
use codespan_reporting::term::{self, Config};
use lang::diag::{Diagnostic, Severity};
use lang::Sources;
use std::io::Write as _;

/// Renders diagnostics over the files they point into. With `color == false` the text
/// has no escape codes and depends only on the inputs (snapshot tests rely on it).
pub fn render_diagnostics(sources: &Sources, diags: &[Diagnostic], color: bool) -> String {
    let mut files = SimpleFiles::new();
    for (_, file) in sources.iter() {
        files.add(file.name.as_str(), file.text.as_str());
    }
    let config = Config::default();
    let mut buf = Vec::new();
    {
        let mut writer: Box<dyn WriteColor + '_> = if color {
            Box::new(Ansi::new(&mut buf))
        } else {
            Box::new(NoColor::new(&mut buf))
        };
        for diag in diags {
            let converted = convert(sources, diag);
            if term::emit(&mut *writer, &config, &files, &converted).is_err() {
                // Only reachable if codespan rejects a span we clamped; say what we can.
                let _ = writeln!(writer, "{}: {}", severity_word(diag.severity), diag.message);
                for note in &diag.notes {
                    let _ = writeln!(writer, "  = {note}");
                }
            }
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn severity_word(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// Converts one diagnostic, dropping labels into unknown files and clamping ranges to
/// character boundaries inside the file, so rendering never fails on a bad span.
fn convert(sources: &Sources, diag: &Diagnostic) -> CsDiagnostic<usize> {
    let severity = match diag.severity {
        Severity::Error => CsSeverity::Error,
        Severity::Warning => CsSeverity::Warning,
    };
    let labels = diag
        .labels
        .iter()
        .filter(|l| (l.span.file.0 as usize) < sources.len())
        .map(|l| {
            let text = sources.get(l.span.file).text.as_str();
            let start = floor_boundary(text, l.span.start as usize);
            let end = ceil_boundary(text, (l.span.end as usize).max(start));
            let label = if l.primary {
                CsLabel::primary(l.span.file.0 as usize, start..end)
            } else {
                CsLabel::secondary(l.span.file.0 as usize, start..end)
            };
            label.with_message(l.message.clone())
        })
        .collect();
    CsDiagnostic::new(severity)
        .with_message(diag.message.clone())
        .with_labels(labels)
        .with_notes(diag.notes.clone())
}

fn floor_boundary(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_boundary(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use lang::{FileId, Span};

    #[test]
    fn renders_location_caret_and_notes() {
        let mut sources = Sources::new();
        let f = sources.add("a.rule", "neuron N {\n  state v = 0\n}\n");
        let d = Diagnostic::error(Span::new(f, 23, 24), "expected `;`")
            .with_label("here")
            .with_note("every declaration ends with `;`");
        let text = render_diagnostics(&sources, &[d], false);
        assert!(text.contains("a.rule:2:13"), "{text}");
        assert!(text.contains("expected `;`"), "{text}");
        assert!(text.contains("^ here"), "{text}");
        assert!(text.contains("= every declaration ends with `;`"), "{text}");
        assert!(!text.contains('\u{1b}'), "no escape codes without colour");
        let coloured = render_diagnostics(
            &sources,
            &[Diagnostic::error(Span::new(f, 0, 6), "x")],
            true,
        );
        assert!(coloured.contains('\u{1b}'));
    }

    #[test]
    fn bad_spans_do_not_panic() {
        let mut sources = Sources::new();
        let f = sources.add("u.rule", "é\n");
        let diags = [
            Diagnostic::error(Span::new(f, 1, 1), "inside a character"),
            Diagnostic::error(Span::new(f, 50, 70), "past the end"),
            Diagnostic::warning(Span::new(FileId(9), 0, 1), "unknown file"),
        ];
        let text = render_diagnostics(&sources, &diags, false);
        assert!(
            text.contains("past the end") && text.contains("warning: unknown file"),
            "{text}"
        );
    }
}
