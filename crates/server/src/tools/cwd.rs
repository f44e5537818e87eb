//! `SetWorkingDirectory`: changes the directory tools run in.

use letta_app_server_protocol::JsonObject;
use serde_json::json;

use super::args::{object_schema, required_str, try_arg};
use super::{LocalTool, ToolContext, ToolFuture, ToolKind, ToolResult, resolve_path};

/// `SetWorkingDirectory`: selects a new working directory.
pub struct SetWorkingDirectory;

impl LocalTool for SetWorkingDirectory {
    fn name(&self) -> &'static str {
        "SetWorkingDirectory"
    }

    fn description(&self) -> &'static str {
        "Changes the working directory that Bash runs in and that relative paths of the other \
         tools resolve against. The directory must exist."
    }

    fn parameters(&self) -> JsonObject {
        object_schema(
            json!({
                "path": {
                    "type": "string",
                    "description": "The new working directory (absolute, or relative to the current one)."
                }
            }),
            &["path"],
        )
    }

    fn kind(&self) -> ToolKind {
        ToolKind::Other
    }

    fn run<'a>(&'a self, args: JsonObject, context: ToolContext<'a>) -> ToolFuture<'a> {
        Box::pin(async move {
            let requested = try_arg!(required_str(&args, "path"));
            if requested.trim().is_empty() {
                return ToolResult::error("`path` is empty.");
            }
            let path = resolve_path(context.cwd, requested);
            let canonical = match tokio::fs::canonicalize(&path).await {
                Ok(canonical) => canonical,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    return ToolResult::error(format!("Directory does not exist: {}", path.display()));
                }
                Err(error) => return ToolResult::error(format!("Cannot access {}: {error}", path.display())),
            };
            if !canonical.is_dir() {
                return ToolResult::error(format!("{} is not a directory.", canonical.display()));
            }
            ToolResult {
                new_cwd: Some(canonical.clone()),
                ..ToolResult::ok(format!("Working directory changed to {}", canonical.display()))
            }
        })
    }
}
