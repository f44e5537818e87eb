//! Reminders a turn's input starts with, as real Letta prepends them to the user message: the
//! names of the agent's secrets (docs/protocol.md §4.13), on the first turn that has some, again
//! when they change, and again after a compaction.

use letta_app_server_protocol::{ContentPart, MessageContent};

use super::Conversation;
use super::state::{Batch, State};
use crate::engine::context::Context;

/// What a turn tells the model about the agent's secrets.
pub(super) struct SecretsNotice {
    /// The reminder, if there is something to say.
    text: Option<String>,
    /// The secret names it tells of (recorded once the turn started).
    names: String,
}

impl Conversation {
    /// The secrets notice of the next turn, unless the model already knows the agent's secret
    /// names (or the conversation has no agent, or its secrets cannot be read).
    pub(super) fn secrets_notice(&self, engine: &Context, state: &State) -> Option<SecretsNotice> {
        let secrets = engine.secrets.of(self.scope.agent_id.as_deref()?).ok()?;
        let names: Vec<&str> = secrets.keys().map(String::as_str).collect();
        let key = names.join("\0");
        let changed = match &state.secret_names {
            Some(told) if *told == key => return None,
            Some(_) => true,
            None => false,
        };
        let text = match (names.is_empty(), changed) {
            (true, false) => None,
            (true, true) => Some("Your secrets changed: none is set now.".to_owned()),
            (false, _) => {
                let intro = if changed {
                    "Your secrets changed. These are set now:"
                } else {
                    "These secrets are set for you:"
                };
                let list: Vec<String> = names.iter().map(|name| format!("- `${name}`")).collect();
                Some(format!(
                    "{intro}\n{}\n\nA shell command gets a secret only where it names it as `$NAME`. A program \
                     that reads one from its environment needs it passed on its command line, e.g. for a \
                     secret named `API_KEY`:\n`API_KEY=\"$API_KEY\" python3 script.py`\n`API_KEY=\"$API_KEY\" \
                     node script.js`\nand then reads it as usual (`os.environ[\"API_KEY\"]`, \
                     `process.env.API_KEY`).\n\nYou never see the values: where one would appear in a \
                     tool's output you see `NAME=<REDACTED>`, which means the secret is set and works. Keep \
                     writing `$NAME`.",
                    list.join("\n")
                ))
            }
        };
        Some(SecretsNotice {
            text: text.map(|text| format!("<system-reminder>\n{text}\n</system-reminder>")),
            names: key,
        })
    }
}

impl SecretsNotice {
    /// Puts the reminder, if any, before the batch's input.
    pub(super) fn prepend(&self, batch: &mut Batch) {
        let (Some(text), Some(content)) = (&self.text, batch.content.as_mut()) else {
            return;
        };
        let mut parts = vec![ContentPart::text(text.clone())];
        match std::mem::replace(content, MessageContent::Parts(Vec::new())) {
            MessageContent::Text(original) => parts.push(ContentPart::text(original)),
            MessageContent::Parts(original) => parts.extend(original),
        }
        *content = MessageContent::Parts(parts);
    }

    /// Records that the model was told (its turn started).
    pub(super) fn told(self, state: &mut State) {
        state.secret_names = Some(self.names);
    }
}
