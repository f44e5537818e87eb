//! `validate`: recorded frames checked against the schema, reported one line per violation
//! with a summary by frame type.

use std::fmt::Write as _;

use letta_app_server_protocol::compat::transcript::{Position, Report};

/// One line per violation: `SOURCE:LINE: DIRECTION TYPE: PATH: REASON` (`SOURCE:message N:` for
/// the messages of a JSON array or a HAR export).
pub fn findings(source: &str, report: &Report) -> String {
    let mut out = String::new();
    for finding in &report.findings {
        let frame_type = finding.frame_type.as_deref().unwrap_or("(no type)");
        let position = match finding.position {
            Position::Line(line) => line.to_string(),
            item => item.to_string(),
        };
        for violation in &finding.violations {
            let _ = writeln!(
                out,
                "{source}:{position}: {} {frame_type}: {violation}",
                finding.direction
            );
        }
    }
    out
}

/// The summary: how many messages of each direction and type were checked, and were invalid.
pub fn summary(report: &Report) -> String {
    let width = report
        .by_type
        .keys()
        .map(|(_, frame_type)| frame_type.len())
        .max()
        .unwrap_or(0)
        .max("type".len());
    let mut out = format!(
        "{:<9} {:<width$} {:>8} {:>8}\n",
        "direction", "type", "checked", "invalid"
    );
    for ((direction, frame_type), tally) in &report.by_type {
        let _ = writeln!(
            out,
            "{:<9} {frame_type:<width$} {:>8} {:>8}",
            direction.as_str(),
            tally.checked,
            tally.invalid
        );
    }
    let invalid = report.by_type.values().map(|tally| tally.invalid).sum::<usize>();
    let _ = writeln!(out, "{} messages checked, {invalid} invalid", report.checked());
    out
}
