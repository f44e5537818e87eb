//! Compares generated artefacts with the checked-in files and explains any difference.

use std::fmt::Write as _;
use std::path::Path;

use similar::TextDiff;

use crate::artefacts::Artefact;

/// Lines of unified diff shown per stale file before the rest is elided.
const MAX_DIFF_LINES: usize = 80;

/// Checks every artefact against the file under `root`. On drift, the error lists each stale
/// file with a unified diff and the command that regenerates it.
pub fn check(root: &Path, artefacts: &[Artefact]) -> Result<(), String> {
    let mut report = String::new();
    for artefact in artefacts {
        let path = artefact.path.display();
        let (problem, on_disk) = match std::fs::read_to_string(root.join(&artefact.path)) {
            Ok(text) if text == artefact.contents => continue,
            Ok(text) => ("is out of date with the Rust types".to_owned(), text),
            Err(error) => (format!("cannot be read ({error})"), String::new()),
        };
        let _ = writeln!(
            report,
            "`{path}` {problem}. Fix: run `{}` and commit the result.",
            artefact.command
        );
        let diff = TextDiff::from_lines(&on_disk, &artefact.contents);
        let unified = diff
            .unified_diff()
            .context_radius(2)
            .header(&format!("{path} (checked in)"), &format!("{path} (generated)"))
            .to_string();
        let lines: Vec<&str> = unified.lines().collect();
        for line in lines.iter().take(MAX_DIFF_LINES) {
            let _ = writeln!(report, "    {line}");
        }
        if lines.len() > MAX_DIFF_LINES {
            let _ = writeln!(report, "    … {} more diff lines", lines.len() - MAX_DIFF_LINES);
        }
    }
    if report.is_empty() { Ok(()) } else { Err(report) }
}

/// Writes every artefact under `root`, returning the paths that changed.
pub fn write(root: &Path, artefacts: &[Artefact]) -> std::io::Result<Vec<String>> {
    let mut changed = Vec::new();
    for artefact in artefacts {
        let path = root.join(&artefact.path);
        if std::fs::read_to_string(&path).ok().as_deref() == Some(artefact.contents.as_str()) {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, &artefact.contents)?;
        changed.push(artefact.path.display().to_string());
    }
    Ok(changed)
}
