//! `memory`: the model edits its agent's memory (docs/protocol.md §4.2, §6.2). Each call is one
//! commit; the files it changed are reported for the `memory_updated` push.

use letta_app_server_protocol::JsonObject;
use serde_json::{Value, json};

use super::args::{object_schema, optional_str, required_str, try_arg};
use super::{LocalTool, ToolContext, ToolFuture, ToolKind, ToolResult};
use crate::memory::blocks::{self, Command};
use crate::memory::{Memory, repo};

/// `memory`: creates, edits, renames and deletes the agent's memory files.
pub struct MemoryTool;

impl LocalTool for MemoryTool {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn description(&self) -> &'static str {
        "Edits your memory: markdown files in your memory directory ($MEMORY_DIR), each with a \
         front matter `description`, kept under git; every call is committed with `reason` as its \
         message. Files under `system/` are shown in full in your system prompt from the next \
         turn on; other files are listed there and read when needed. Paths are relative to the \
         memory directory (`system/human.md`; `.md` may be left out) or absolute inside it.\n\
         Commands: `create` (file_path, description, file_text?), `str_replace` (file_path, \
         old_string, new_string: replaces the first occurrence in the body), `insert` (file_path, \
         insert_line: 1-based, insert_text), `delete` (file_path: a file or a directory), \
         `rename` (old_path, new_path), `update_description` (file_path, description). Files \
         marked `read_only: true` cannot be changed."
    }

    fn parameters(&self) -> JsonObject {
        let text = |description: &str| json!({"type": "string", "description": description});
        object_schema(
            json!({
                "command": {
                    "type": "string",
                    "enum": ["str_replace", "insert", "delete", "rename", "update_description", "create"],
                    "description": "What to do."
                },
                "reason": text("Why: the commit message."),
                "file_path": text("The memory file (create, str_replace, insert, delete, update_description)."),
                "old_path": text("The file to move (rename)."),
                "new_path": text("Where to move it (rename)."),
                "old_string": text("The text to replace (str_replace)."),
                "new_string": text("What replaces it (str_replace)."),
                "insert_line": {"type": "integer", "description": "The body line to insert before, from 1 (insert)."},
                "insert_text": text("The text to insert (insert)."),
                "description": text("The file's description (create, update_description)."),
                "file_text": text("The new file's body (create)."),
            }),
            &["command", "reason"],
        )
    }

    fn kind(&self) -> ToolKind {
        ToolKind::Memory
    }

    fn run<'a>(&'a self, args: JsonObject, context: ToolContext<'a>) -> ToolFuture<'a> {
        Box::pin(async move {
            let command = try_arg!(command(&args));
            let reason = try_arg!(required_str(&args, "reason")).trim().to_owned();
            if reason.is_empty() {
                return ToolResult::error("memory: 'reason' must be a non-empty string");
            }
            let Some(Memory { root, author }) = context.memory.cloned() else {
                return ToolResult::error(
                    "memory: this agent has no memory repository (a controller turns it on with enable_memfs)",
                );
            };
            let name = command.name();
            let done = tokio::task::spawn_blocking(move || {
                let paths = blocks::apply(&root, &command)?;
                let sha = repo::commit(&root, &paths, &reason, &author)?;
                Ok::<_, String>((paths, sha))
            })
            .await;
            match done {
                Ok(Ok((paths, Some(sha)))) => ToolResult {
                    memory_changed: paths,
                    ..ToolResult::ok(format!("Memory {name} committed locally ({}).", &sha[..7]))
                },
                Ok(Ok((_, None))) => ToolResult::error(format!(
                    "Memory {name} made no effective changes; nothing was committed. The resulting content \
                     matched what was already on disk."
                )),
                Ok(Err(error)) => ToolResult::error(error),
                Err(error) => ToolResult::error(format!("memory: {error}")),
            }
        })
    }
}

/// The command `args` ask for, with the arguments it needs.
fn command(args: &JsonObject) -> Result<Command, String> {
    let command = required_str(args, "command")?;
    let text = |field: &str| -> Result<String, String> {
        match optional_str(args, field)? {
            Some(value) if !value.trim().is_empty() => Ok(value.to_owned()),
            _ => Err(format!("memory {command}: '{field}' must be a non-empty string")),
        }
    };
    let optional = |field: &str| Ok::<_, String>(optional_str(args, field)?.unwrap_or_default().to_owned());
    Ok(match command {
        "create" => Command::Create {
            path: text("file_path")?,
            description: text("description")?,
            text: optional("file_text")?,
        },
        "str_replace" => Command::StrReplace {
            path: text("file_path")?,
            old: text("old_string")?,
            // Unlike real Letta, an empty replacement is allowed: it deletes the text.
            new: match optional_str(args, "new_string")? {
                Some(new) => new.to_owned(),
                None => return Err("memory str_replace: 'new_string' must be a string".into()),
            },
        },
        "insert" => Command::Insert {
            path: text("file_path")?,
            line: match args.get("insert_line") {
                Some(Value::Number(line)) => line.as_f64().map_or(1, |line| line.floor() as i64),
                _ => return Err("memory insert: 'insert_line' must be a number".into()),
            },
            text: text("insert_text")?,
        },
        "delete" => Command::Delete {
            path: text("file_path")?,
        },
        "rename" => Command::Rename {
            from: text("old_path")?,
            to: text("new_path")?,
        },
        "update_description" => Command::UpdateDescription {
            path: text("file_path")?,
            description: text("description")?,
        },
        other => return Err(format!("Unsupported memory command: {other}")),
    })
}
