//! Permission classification of tool calls (docs/protocol.md §3.9): which calls run straight away and
//! which ask the controller first.

use letta_app_server_protocol::{DevicePermissionMode, JsonObject, PermissionSuggestion};

use crate::tools::ToolKind;

/// What to do with a tool call before running it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Run it.
    Allow,
    /// Send a `control_request` and wait for the answer.
    Ask,
}

/// What kind of tool a call is for, as far as permissions are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// A local tool of this kind.
    Local(ToolKind),
    /// A controller-owned tool: asks in every mode but `unrestricted`.
    External,
}

/// The suggestion id that saves a rule ("don't ask again").
pub const SAVE_DEFAULT: &str = "save-default";

/// Classifies a call of `tool` under `mode`, given the rules saved in this runtime (`allowed`).
pub fn classify(
    mode: DevicePermissionMode,
    tool: &str,
    subject: Subject,
    args: &JsonObject,
    allowed: &Rules,
) -> Verdict {
    match subject {
        Subject::Local(ToolKind::Interactive) => return Verdict::Ask,
        Subject::Local(ToolKind::Posting) => return Verdict::Allow,
        _ => {}
    }
    if allowed.allows(tool, subject, args) {
        return Verdict::Allow;
    }
    let allow = match mode {
        DevicePermissionMode::Unrestricted => true,
        DevicePermissionMode::Strict => false,
        DevicePermissionMode::Standard | DevicePermissionMode::AcceptEdits => match subject {
            Subject::Local(ToolKind::ReadOnly | ToolKind::Memory) => true,
            Subject::Local(ToolKind::Shell) => command(args).is_some_and(is_read_only_command),
            Subject::Local(ToolKind::Edit) => mode == DevicePermissionMode::AcceptEdits,
            Subject::Local(ToolKind::Other | ToolKind::Interactive) | Subject::External => false,
            Subject::Local(ToolKind::Posting) => true,
        },
    };
    if allow { Verdict::Allow } else { Verdict::Ask }
}

fn command(args: &JsonObject) -> Option<&str> {
    args.get("command").and_then(|c| c.as_str())
}

/// Rules saved by approving with the `save-default` suggestion, for the rest of the runtime.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    commands: Vec<String>,
    tools: Vec<String>,
}

impl Rules {
    fn allows(&self, tool: &str, subject: Subject, args: &JsonObject) -> bool {
        match subject {
            Subject::Local(ToolKind::Shell) => {
                command(args).is_some_and(|c| self.commands.iter().any(|prefix| command_prefix(c) == *prefix))
            }
            _ => self.tools.iter().any(|allowed| allowed == tool),
        }
    }

    /// Saves the rule a `save-default` approval of this call stands for; returns the permission
    /// mode to switch to, for edits.
    pub fn save(&mut self, tool: &str, subject: Subject, args: &JsonObject) -> Option<DevicePermissionMode> {
        match subject {
            Subject::Local(ToolKind::Shell) => {
                if let Some(command) = command(args) {
                    self.commands.push(command_prefix(command));
                }
                None
            }
            Subject::Local(ToolKind::Edit) => Some(DevicePermissionMode::AcceptEdits),
            _ => {
                self.tools.push(tool.to_owned());
                None
            }
        }
    }
}

/// The "don't ask again" suggestion offered with a question about this call.
pub fn suggestion(tool: &str, subject: Subject, args: &JsonObject) -> Option<PermissionSuggestion> {
    let text = match subject {
        Subject::Local(ToolKind::Interactive) => return None,
        Subject::Local(ToolKind::Shell) => {
            format!(
                "Yes, and don't ask again for '{}' in this project",
                command(args).map(command_prefix).unwrap_or_default()
            )
        }
        Subject::Local(ToolKind::Edit) => "Yes, switch to accept edits mode for this session".to_owned(),
        _ => format!("Yes, allow {tool} operations during this session"),
    };
    Some(PermissionSuggestion {
        id: SAVE_DEFAULT.into(),
        text,
    })
}

/// The part of a shell command a saved rule matches: the first command of a chain.
fn command_prefix(command: &str) -> String {
    command
        .split(['&', '|', ';'])
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// Programs that only read, and git subcommands that only read.
const READ_ONLY_PROGRAMS: &[&str] = &[
    "cat", "cd", "cut", "date", "df", "diff", "du", "echo", "file", "grep", "head", "hostname", "id", "less", "ls",
    "nl", "printf", "pwd", "realpath", "rg", "sort", "stat", "tail", "tree", "true", "uname", "uniq", "wc", "which",
    "whoami",
];
const READ_ONLY_GIT: &[&str] = &[
    "status",
    "log",
    "diff",
    "show",
    "branch",
    "rev-parse",
    "remote",
    "ls-files",
    "blame",
];

/// Whether every command of a shell line only reads: no redirection into files, no command
/// substitution, and each command in a `&&`/`||`/`;`/`|` chain is a known read-only program.
pub fn is_read_only_command(line: &str) -> bool {
    if line.contains(['>', '`']) || line.contains("$(") || line.contains("<(") {
        return false;
    }
    line.split(['&', '|', ';', '\n'])
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .all(|part| {
            let mut words = part.split_whitespace();
            match words.next() {
                Some("git") => words.next().is_some_and(|sub| READ_ONLY_GIT.contains(&sub)),
                Some("find") => !part.contains("-exec") && !part.contains("-delete") && !part.contains("-ok"),
                Some("sed") => !part.contains("-i"),
                Some(program) => READ_ONLY_PROGRAMS.contains(&program),
                None => true,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(value: serde_json::Value) -> JsonObject {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn read_only_shell_commands() {
        for line in [
            "echo hi",
            "ls -la && pwd",
            "git status",
            "cat a | grep b | wc -l",
            "find . -name '*.rs'",
        ] {
            assert!(is_read_only_command(line), "{line}");
        }
        for line in [
            "mkdir x",
            "echo hi > f",
            "rm -rf /",
            "git push",
            "ls; rm x",
            "echo $(rm x)",
            "find . -delete",
            "sed -i s/a/b/ f",
        ] {
            assert!(!is_read_only_command(line), "{line}");
        }
    }

    #[test]
    fn modes_classify_like_real_letta() {
        use DevicePermissionMode::*;
        let none = Rules::default();
        let shell = |c: &str| (Subject::Local(ToolKind::Shell), args(json!({"command": c})));
        let cases = [
            (Unrestricted, Subject::Local(ToolKind::Edit), Verdict::Allow),
            (Unrestricted, Subject::External, Verdict::Allow),
            (Unrestricted, Subject::Local(ToolKind::Interactive), Verdict::Ask),
            (Standard, Subject::Local(ToolKind::ReadOnly), Verdict::Allow),
            (Standard, Subject::Local(ToolKind::Edit), Verdict::Ask),
            (Standard, Subject::External, Verdict::Ask),
            (AcceptEdits, Subject::Local(ToolKind::Edit), Verdict::Allow),
            (AcceptEdits, Subject::Local(ToolKind::Other), Verdict::Ask),
            (Strict, Subject::Local(ToolKind::ReadOnly), Verdict::Ask),
            (Strict, Subject::Local(ToolKind::Posting), Verdict::Allow),
            (Standard, Subject::Local(ToolKind::Memory), Verdict::Allow),
            (AcceptEdits, Subject::Local(ToolKind::Memory), Verdict::Allow),
            (Strict, Subject::Local(ToolKind::Memory), Verdict::Ask),
        ];
        for (mode, subject, verdict) in cases {
            assert_eq!(
                classify(mode, "T", subject, &JsonObject::new(), &none),
                verdict,
                "{mode:?} {subject:?}"
            );
        }
        let (subject, echo) = shell("echo hi");
        assert_eq!(classify(Standard, "Bash", subject, &echo, &none), Verdict::Allow);
        let (subject, mkdir) = shell("mkdir -p x && echo made");
        assert_eq!(classify(Standard, "Bash", subject, &mkdir, &none), Verdict::Ask);
        let mut rules = Rules::default();
        assert_eq!(rules.save("Bash", subject, &mkdir), None);
        assert_eq!(classify(Standard, "Bash", subject, &mkdir, &rules), Verdict::Allow);
        assert_eq!(
            classify(Strict, "Bash", subject, &mkdir, &rules),
            Verdict::Allow,
            "a saved rule applies in every mode"
        );
    }
}
