//! `TodoWrite`: the model's task list.

use letta_app_server_protocol::JsonObject;
use serde_json::{Value, json};

use super::args::{object_schema, required_array, try_arg, type_name};
use super::{LocalTool, ToolContext, ToolFuture, ToolKind, ToolResult};

const STATUSES: [&str; 3] = ["pending", "in_progress", "completed"];

/// `TodoWrite`: replaces the task list.
pub struct TodoWrite;

impl LocalTool for TodoWrite {
    fn name(&self) -> &'static str {
        "TodoWrite"
    }

    fn description(&self) -> &'static str {
        "Replaces your task list for the current work. Use it for multi-step tasks: list the \
         steps, keep exactly one `in_progress` while working on it, and mark each `completed` as \
         soon as it is done. Send the whole list every time."
    }

    fn parameters(&self) -> JsonObject {
        object_schema(
            json!({
                "todos": {
                    "type": "array",
                    "description": "The complete, updated task list.",
                    "items": {
                        "type": "object",
                        "properties": {
                            "content": {"type": "string", "minLength": 1, "description": "What to do, imperative (e.g. \"Run the tests\")."},
                            "status": {"type": "string", "enum": STATUSES, "description": "pending, in_progress or completed."},
                            "activeForm": {"type": "string", "description": "Present-continuous form shown while in progress (e.g. \"Running the tests\")."},
                            "id": {"type": "string", "description": "Optional identifier of the task."}
                        },
                        "required": ["content", "status"],
                        "additionalProperties": false
                    }
                }
            }),
            &["todos"],
        )
    }

    fn kind(&self) -> ToolKind {
        ToolKind::ReadOnly
    }

    fn run<'a>(&'a self, args: JsonObject, _context: ToolContext<'a>) -> ToolFuture<'a> {
        Box::pin(async move {
            let todos = try_arg!(required_array(&args, "todos"));
            let mut list = String::new();
            for (index, todo) in todos.iter().enumerate() {
                let Value::Object(todo) = todo else {
                    return ToolResult::error(format!(
                        "todos[{index}] must be an object with content and status, got {}.",
                        type_name(todo)
                    ));
                };
                let content = match todo.get("content") {
                    Some(Value::String(content)) if !content.trim().is_empty() => content,
                    Some(Value::String(_)) => return ToolResult::error(format!("todos[{index}].content is empty.")),
                    _ => return ToolResult::error(format!("todos[{index}].content must be a non-empty string.")),
                };
                let status = match todo.get("status") {
                    Some(Value::String(status)) if STATUSES.contains(&status.as_str()) => status,
                    _ => {
                        return ToolResult::error(format!(
                            "todos[{index}].status must be one of \"pending\", \"in_progress\", \"completed\"."
                        ));
                    }
                };
                match todo.get("activeForm") {
                    None | Some(Value::Null | Value::String(_)) => {}
                    Some(_) => return ToolResult::error(format!("todos[{index}].activeForm must be a string.")),
                }
                match todo.get("id") {
                    None | Some(Value::Null | Value::String(_) | Value::Number(_)) => {}
                    Some(_) => return ToolResult::error(format!("todos[{index}].id must be a string.")),
                }
                list.push_str(&format!("\n{}. [{status}] {content}", index + 1));
            }
            if todos.is_empty() {
                list.push_str("\n(The list is empty.)");
            }
            ToolResult::ok(format!(
                "Todos have been modified successfully. Ensure that you continue to use the todo list to \
                 track your progress. Please proceed with the current tasks if applicable.\n{list}"
            ))
        })
    }
}
