//! The kit's results: one per check, rendered as text lines or JSON.

use std::fmt::Write as _;

use serde_json::{Value, json};

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The server behaved as the protocol says.
    Pass,
    /// It did not; the reason says where.
    Fail,
    /// The check did not apply (the server does not claim the capability it needs).
    Skip,
}

impl Outcome {
    /// `PASS`, `FAIL` or `SKIP`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Fail => "FAIL",
            Self::Skip => "SKIP",
        }
    }
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// The check's name (`approval.allow`).
    pub name: &'static str,
    /// How it ended.
    pub outcome: Outcome,
    /// Why it failed or was skipped; for a pass, an optional note (how the server answered where
    /// the protocol allows several answers).
    pub reason: Option<String>,
}

/// What the server said about itself in `app_server_info_response`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerInfo {
    /// `letta_code_version`.
    pub version: String,
    /// `protocol_version`.
    pub protocol_version: i64,
    /// `backend` (`local`, `api`).
    pub backend: String,
}

/// The results of a run, in the order the checks ran.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The server that was checked.
    pub server: ServerInfo,
    /// One result per check that ran.
    pub checks: Vec<CheckResult>,
}

impl Report {
    /// How many checks ended with `outcome`.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.checks.iter().filter(|check| check.outcome == outcome).count()
    }

    /// Whether no check failed.
    pub fn passed(&self) -> bool {
        self.count(Outcome::Fail) == 0
    }

    /// One line per check (`PASS name`, `FAIL name: reason`, `SKIP name: reason`; a pass with a
    /// note as `PASS name: note`), then a summary line.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        for check in &self.checks {
            let _ = match &check.reason {
                Some(reason) => writeln!(text, "{} {}: {reason}", check.outcome.as_str(), check.name),
                None => writeln!(text, "{} {}", check.outcome.as_str(), check.name),
            };
        }
        let _ = writeln!(
            text,
            "{} checks against {} (protocol_version {}, backend {}): {} passed, {} failed, {} skipped",
            self.checks.len(),
            self.server.version,
            self.server.protocol_version,
            self.server.backend,
            self.count(Outcome::Pass),
            self.count(Outcome::Fail),
            self.count(Outcome::Skip),
        );
        text
    }

    /// `{"server": {letta_code_version, protocol_version, backend}, "checks": [{name, result:
    /// "pass"|"fail"|"skip", reason?}], "summary": {passed, failed, skipped}}`.
    pub fn to_json(&self) -> Value {
        let checks: Vec<Value> = self
            .checks
            .iter()
            .map(|check| {
                let mut entry = json!({"name": check.name, "result": check.outcome.as_str().to_lowercase()});
                if let Some(reason) = &check.reason {
                    entry["reason"] = json!(reason);
                }
                entry
            })
            .collect();
        json!({
            "server": {
                "letta_code_version": self.server.version,
                "protocol_version": self.server.protocol_version,
                "backend": self.server.backend,
            },
            "checks": checks,
            "summary": {
                "passed": self.count(Outcome::Pass),
                "failed": self.count(Outcome::Fail),
                "skipped": self.count(Outcome::Skip),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        let check = |name, outcome, reason: Option<&str>| CheckResult {
            name,
            outcome,
            reason: reason.map(str::to_owned),
        };
        Report {
            server: ServerInfo {
                version: "0.34.12".into(),
                protocol_version: 1,
                backend: "local".into(),
            },
            checks: vec![
                check("turn.streamed", Outcome::Pass, None),
                check("abort.streaming", Outcome::Fail, Some("no `turn_finished` within 10s")),
                check(
                    "tier_b.list_memory",
                    Outcome::Skip,
                    Some("the server does not claim `memory_management`"),
                ),
            ],
        }
    }

    #[test]
    fn a_line_per_check_then_a_summary() {
        assert_eq!(
            report().to_text(),
            "PASS turn.streamed\n\
             FAIL abort.streaming: no `turn_finished` within 10s\n\
             SKIP tier_b.list_memory: the server does not claim `memory_management`\n\
             3 checks against 0.34.12 (protocol_version 1, backend local): 1 passed, 1 failed, 1 skipped\n"
        );
        assert!(!report().passed());
    }

    #[test]
    fn json_has_the_same_results() {
        let json = report().to_json();
        assert_eq!(json["checks"][0], json!({"name": "turn.streamed", "result": "pass"}));
        assert_eq!(json["checks"][1]["result"], "fail");
        assert_eq!(json["summary"], json!({"passed": 1, "failed": 1, "skipped": 1}));
        assert_eq!(json["server"]["letta_code_version"], "0.34.12");
    }
}
