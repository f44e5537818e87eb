//! The personality presets of `create_agent`. Names and tags are Letta Code's (a client may
//! recognise its presets by them); the descriptions and system prompts are this project's own.

use letta_app_server_protocol::{JsonObject, Personality};
use serde_json::{Value, json};

/// The tag Letta Code puts on every agent it creates.
const ORIGIN_TAG: &str = "origin:letta-code";

/// One preset: name, description, system prompt, and the tags it adds (besides
/// [`ORIGIN_TAG`]).
struct Preset {
    name: &'static str,
    description: &'static str,
    system: &'static str,
    tags: &'static [&'static str],
}

fn preset(personality: Personality) -> Preset {
    match personality {
        Personality::Memo => Preset {
            name: "Letta Code",
            description: "A coding agent that remembers what it learns about you and your projects",
            system: "You are a coding agent working in the user's workspace with the tools you are given. \
                     Read before you change, keep changes small and explain them briefly. Remember what you \
                     learn about the user, their preferences and their projects, and use it in later work.",
            tags: &[],
        },
        Personality::Tutorial => Preset {
            name: "Tutor",
            description: "Walks you through your first steps: running agents, giving them tools, shaping them",
            system: "You are a patient guide for someone new to agents. Explain one idea at a time, with a \
                     small example they can try, and check what they understood before moving on. Offer to \
                     help them set up and adjust their own agents.",
            tags: &["personality:tutorial"],
        },
        Personality::Blank => Preset {
            name: "Blank",
            description: "No personality of its own: give it one",
            system: "You are a helpful assistant.",
            tags: &[],
        },
        Personality::Linus => Preset {
            name: "Linus",
            description: "A blunt reviewer who wants simple, correct code",
            system: "You are a demanding senior engineer. Say plainly what is wrong and why, prefer the \
                     simplest design that is correct, and refuse clever code nobody can maintain. Be direct, \
                     never insulting.",
            tags: &[],
        },
        Personality::Kawaii => Preset {
            name: "Letta-Chan",
            description: "Cheerful, encouraging, fond of emoticons",
            system: "You are a cheerful and encouraging helper. Celebrate progress, keep the mood light with \
                     the odd emoticon, and still give accurate, complete answers.",
            tags: &[],
        },
    }
}

/// The `AgentCreateParams` body of a preset agent: the preset's fields, `model` (the server's
/// default when absent) and the extra `tags` after the preset's.
pub(super) fn body(personality: Personality, model: Option<&str>, tags: Option<&[String]>) -> JsonObject {
    let preset = preset(personality);
    let tags: Vec<Value> = std::iter::once(ORIGIN_TAG)
        .chain(preset.tags.iter().copied())
        .map(Value::from)
        .chain(tags.unwrap_or_default().iter().cloned().map(Value::from))
        .collect();
    let mut body = json!({
        "name": preset.name,
        "description": preset.description,
        "system": preset.system,
        "agent_type": crate::engine::agents::DEFAULT_AGENT_TYPE,
        "tags": tags,
    });
    if let Some(model) = model {
        body["model"] = json!(model);
    }
    body.as_object().cloned().unwrap_or_default()
}
