//! The results table: rows with units, targets and verdicts, printed to the terminal and
//! written into `BENCHMARKS.md` with the date and the machine.

use std::fmt::Write as _;
use std::path::Path;
use std::time::SystemTime;

/// How a value is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Milliseconds.
    Millis,
    /// Microseconds.
    Micros,
    /// Bytes.
    Bytes,
    /// Mebibytes.
    Mib,
    /// Events per second.
    PerSecond,
    /// Megabytes (10^6 bytes) per second.
    MbPerSecond,
    /// Percent.
    Percent,
}

impl Unit {
    /// `value` (in this unit) for people.
    pub fn show(self, value: f64) -> String {
        match self {
            Self::Millis if value < 10.0 => format!("{value:.2} ms"),
            Self::Millis => format!("{value:.1} ms"),
            Self::Micros if value < 10.0 => format!("{value:.2} µs"),
            Self::Micros => format!("{value:.1} µs"),
            Self::Bytes => format!("{} B", thousands(value.round() as u64)),
            Self::Mib => format!("{value:.1} MiB"),
            Self::PerSecond => format!("{} /s", thousands(value.round() as u64)),
            Self::MbPerSecond => format!("{value:.0} MB/s"),
            Self::Percent => format!("{value:.1} %"),
        }
    }
}

/// `1234567` → `1,234,567`.
pub fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Whether a measurement met its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// At or under the target.
    Pass,
    /// Over the target, or the measurement failed.
    Fail,
    /// No target: reported for information.
    Info,
    /// An expectation that did not hold but is not enforced.
    Warn,
}

impl Verdict {
    /// How the verdict reads in a table.
    pub fn label(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "FAIL",
            Self::Info => "info",
            Self::Warn => "warn",
        }
    }
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    /// What was measured.
    pub metric: String,
    /// `scripted` or `openai-compatible`.
    pub provider: String,
    /// The measured value, with its unit and any detail.
    pub value: String,
    /// The target, if any.
    pub target: String,
    /// Pass, fail or info.
    pub verdict: Verdict,
    /// Real Letta's figure, for scale.
    pub letta: String,
}

impl Row {
    /// A measured value with an optional upper-bound target (same unit).
    pub fn new(metric: &str, provider: &str, value: f64, unit: Unit, target: Option<f64>) -> Self {
        let verdict = match target {
            Some(limit) if value <= limit => Verdict::Pass,
            Some(_) => Verdict::Fail,
            None => Verdict::Info,
        };
        Self {
            metric: metric.to_owned(),
            provider: provider.to_owned(),
            value: unit.show(value),
            target: target.map_or_else(|| "—".to_owned(), |limit| format!("≤ {}", unit.show(limit))),
            verdict,
            letta: "—".to_owned(),
        }
    }

    /// A measured value with a lower-bound target (same unit): a throughput.
    pub fn at_least(metric: &str, provider: &str, value: f64, unit: Unit, target: f64) -> Self {
        Self {
            target: format!("≥ {}", unit.show(target)),
            verdict: if value >= target { Verdict::Pass } else { Verdict::Fail },
            ..Self::new(metric, provider, value, unit, None)
        }
    }

    /// A ratio of rates (one client's to another's) with a lower-bound target.
    pub fn ratio(metric: &str, provider: &str, ratio: f64, target: f64) -> Self {
        Self {
            metric: metric.to_owned(),
            provider: provider.to_owned(),
            value: format!("{ratio:.2}×"),
            target: format!("≥ {target:.2}×"),
            verdict: if ratio >= target { Verdict::Pass } else { Verdict::Fail },
            letta: "—".to_owned(),
        }
    }

    /// A measurement that could not be made.
    pub fn failed(metric: &str, provider: &str, why: &str, target: Option<String>) -> Self {
        Self {
            metric: metric.to_owned(),
            provider: provider.to_owned(),
            value: format!("failed: {why}"),
            target: target.unwrap_or_else(|| "—".to_owned()),
            verdict: Verdict::Fail,
            letta: "—".to_owned(),
        }
    }

    /// Adds a detail after the value (percentiles, counts).
    pub fn detail(mut self, detail: impl AsRef<str>) -> Self {
        write!(self.value, " ({})", detail.as_ref()).unwrap_or_default();
        self
    }

    /// Sets real Letta's figure.
    pub fn letta(mut self, figure: &str) -> Self {
        figure.clone_into(&mut self.letta);
        self
    }
}

const HEADERS: [&str; 6] = ["metric", "provider", "value", "target", "result", "real Letta"];

fn cells(row: &Row) -> Vec<String> {
    [
        &row.metric,
        &row.provider,
        &row.value,
        &row.target,
        row.verdict.label(),
        &row.letta,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// The table for a terminal, columns aligned.
pub fn plain_table(rows: &[Row]) -> String {
    plain(&HEADERS, &rows.iter().map(cells).collect::<Vec<_>>())
}

/// The table in Markdown.
pub fn markdown_table(rows: &[Row]) -> String {
    markdown(&HEADERS, &rows.iter().map(cells).collect::<Vec<_>>())
}

/// Any table for a terminal, columns aligned.
pub fn plain(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str]| -> String {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell}{}", " ".repeat(width - cell.chars().count())))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut out = line(headers);
    out.push('\n');
    let rules: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    out.push_str(&line(&rules.iter().map(String::as_str).collect::<Vec<_>>()));
    out.push('\n');
    for row in rows {
        out.push_str(&line(&row.iter().map(String::as_str).collect::<Vec<_>>()));
        out.push('\n');
    }
    out
}

/// Any table in Markdown.
pub fn markdown(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = format!("| {} |\n", headers.join(" | "));
    out.push_str(&format!("|{}\n", "---|".repeat(headers.len())));
    for row in rows {
        let escaped: Vec<String> = row.iter().map(|cell| cell.replace('|', "\\|")).collect();
        out.push_str(&format!("| {} |\n", escaped.join(" | ")));
    }
    out
}

/// The machine the benchmarks ran on: CPU model, cores, memory, kernel.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map_or("unknown CPU", |(_, model)| model.trim())
        .to_owned();
    let cores = cpuinfo.lines().filter(|line| line.starts_with("processor")).count();
    let cores = if cores == 0 {
        std::thread::available_parallelism().map_or(0, usize::from)
    } else {
        cores
    };
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|meminfo| {
            meminfo
                .lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or_else(
            || "unknown memory".to_owned(),
            |kib| format!("{:.1} GiB RAM", kib as f64 / (1024.0 * 1024.0)),
        );
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|release| format!(", Linux {}", release.trim()))
        .unwrap_or_default();
    format!("{model}, {cores} cores, {memory}{kernel}")
}

/// The heading that starts the results section of `BENCHMARKS.md`.
const RESULTS_HEADING: &str = "## Results";

/// The heading of the section `cargo xtask chaos` writes at the end of `BENCHMARKS.md`; the
/// benchmarks keep it as it is.
pub const CHAOS_HEADING: &str = "## Chaos: `cargo xtask chaos`";

/// `text` from the line that is exactly `heading` to the end; `""` when there is none.
pub fn section_from<'a>(text: &'a str, heading: &str) -> &'a str {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_end() == heading {
            return &text[offset..];
        }
        offset += line.len();
    }
    ""
}

/// `Run on <date> UTC, on <machine>` for a run that started at `started`.
pub fn run_on(started: SystemTime) -> String {
    let date = humantime::format_rfc3339_seconds(started).to_string();
    format!(
        "Run on {} UTC, on {}",
        date.trim_end_matches('Z').replace('T', " "),
        machine()
    )
}

/// What `BENCHMARKS.md` starts with: how to run, what each metric means and how it is measured.
const INTRO: &str = include_str!("intro.md");

/// Writes `BENCHMARKS.md`: the introduction (`bench/intro.md`), then the results, then the
/// chaos section the file already had.
pub fn write_markdown(path: &Path, rows: &[Row], notes: &[String], started: SystemTime) -> Result<(), String> {
    let existing = std::fs::read_to_string(path).unwrap_or_default();
    let mut out = INTRO.to_owned();
    if !out.ends_with("\n\n") {
        out.push('\n');
    }
    out.push_str(RESULTS_HEADING);
    out.push_str("\n\n");
    out.push_str(&format!("{}.\n\n", run_on(started)));
    out.push_str(&markdown_table(rows));
    if !notes.is_empty() {
        out.push_str("\nNotes from this run:\n\n");
        for note in notes {
            out.push_str(&format!("* {note}\n"));
        }
    }
    let chaos = section_from(&existing, CHAOS_HEADING);
    if !chaos.is_empty() {
        out.push('\n');
        out.push_str(chaos);
    }
    std::fs::write(path, out).map_err(|e| format!("writing {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_verdicts() {
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(12), "12");
        let row = Row::new("x", "scripted", 1.5, Unit::Millis, Some(2.0));
        assert_eq!(
            (row.value.as_str(), row.target.as_str(), row.verdict),
            ("1.50 ms", "≤ 2.00 ms", Verdict::Pass)
        );
        assert_eq!(Row::new("x", "s", 7.0, Unit::Micros, Some(5.0)).verdict, Verdict::Fail);
        assert_eq!(Row::new("x", "s", 7.0, Unit::Bytes, None).verdict, Verdict::Info);
        let table = markdown_table(&[row]);
        assert!(
            table.contains("| x | scripted | 1.50 ms | ≤ 2.00 ms | pass | — |"),
            "{table}"
        );
    }

    #[test]
    fn sections_are_found_by_their_whole_heading_line() {
        let text = "# B\n\n## Results\n\nx\n\n## Chaos: `cargo xtask chaos`\n\ny\n";
        assert_eq!(
            section_from(text, CHAOS_HEADING),
            "## Chaos: `cargo xtask chaos`\n\ny\n"
        );
        assert_eq!(section_from(text, "## Chaos"), "");
        assert_eq!(section_from("# B\n", CHAOS_HEADING), "");
    }
}
