//! `Skill`: the model loads a skill's instructions (docs/protocol.md §4.5, §6.2).

use letta_app_server_protocol::JsonObject;
use serde_json::json;

use super::args::{object_schema, required_str, try_arg};
use super::{LocalTool, ToolContext, ToolFuture, ToolKind, ToolResult};
use crate::skills::render;

/// `Skill`: reads a skill's `SKILL.md` for the model.
pub struct Skill;

impl LocalTool for Skill {
    fn name(&self) -> &'static str {
        "Skill"
    }

    fn description(&self) -> &'static str {
        "Loads a skill: instructions (and files) for a kind of task, listed in your system prompt \
         under <available_skills>. When a skill fits the user's request, load it before answering \
         about the task, then follow it. Give only the skill's name (`pdf`, `commit`); a skill \
         already loaded in this turn need not be loaded again."
    }

    fn parameters(&self) -> JsonObject {
        object_schema(
            json!({
                "skill": {"type": "string", "description": "The skill's name."}
            }),
            &["skill"],
        )
    }

    fn kind(&self) -> ToolKind {
        ToolKind::Other
    }

    fn run<'a>(&'a self, args: JsonObject, context: ToolContext<'a>) -> ToolFuture<'a> {
        Box::pin(async move {
            let name = try_arg!(required_str(&args, "skill")).trim().to_owned();
            let (skills, cwd) = (context.skills.clone(), context.cwd.to_path_buf());
            let memory = context.memory.map(|memory| memory.root.clone());
            let loaded = tokio::task::spawn_blocking(move || {
                let found = skills.find(&name, &cwd, memory.as_deref())?;
                Ok::<_, String>((render(&name, &found)?, name))
            })
            .await;
            match loaded {
                // Real Letta answers `Launching skill: <name>` and sends the content as a user
                // message after the tool results; here the result carries it.
                Ok(Ok((content, name))) => {
                    ToolResult::ok(format!("Launching skill: {name}\n\n<{name}>\n{content}\n</{name}>"))
                }
                Ok(Err(error)) => ToolResult::error(error),
                Err(error) => ToolResult::error(error.to_string()),
            }
        })
    }
}
