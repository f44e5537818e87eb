//! The ledger of what a reconnect restores: the runtimes this client uses (with where each one's
//! event stream resumes), and the sent commands whose answers change them (`runtime_start`,
//! `sync` and `runtime_external_tools_update`, however they were sent: typed method, `command`,
//! `request`, `send` or `send_text`).

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Deserialize;

use crate::frame::RawFrame;
use crate::meta;
use crate::types::{ExternalToolGroup, ExternalToolsUpdate, RuntimeScope};

/// Commands waiting for their answer that a client tracks at most; more are not tracked (their
/// runtimes are not restored). The table empties as answers come and when the connection drops.
const MAX_TRACKED: usize = 1024;

/// The runtimes to restore, and the commands sent that may add to them.
#[derive(Default)]
pub(crate) struct Ledger {
    runtimes: HashMap<RuntimeScope, InUse>,
    /// Commands sent awaiting the answer that changes `runtimes`, by `request_id`.
    tracked: HashMap<String, Tracked>,
    /// On the current connection, whether a turn streamed without `conversation_seq` on a
    /// runtime that does not resume (one subscribed only by `input`, say): a drop then loses
    /// frames.
    unresumable: bool,
    /// Whether a key of `runtimes` names an acting user (events leave it out of their scope).
    acting_users: bool,
}

impl Ledger {
    /// Starts tracking a sent command (read by [`Tracked::of`]) unless the ledger is full;
    /// returns its `request_id` then.
    pub fn track(&mut self, request_id: String, tracked: Tracked) -> Option<String> {
        (self.tracked.len() < MAX_TRACKED).then(|| {
            self.tracked.insert(request_id.clone(), tracked);
            request_id
        })
    }

    /// Stops tracking a command that was not sent after all.
    pub fn untrack(&mut self, request_id: Option<String>) {
        if let Some(request_id) = request_id {
            self.tracked.remove(&request_id);
        }
    }

    /// Applies `frame` if it answers a tracked command. For a subscription made with
    /// `resume_after`, returns whether it resumed (`false` when it failed).
    pub fn answer(&mut self, frame: &RawFrame) -> Option<bool> {
        let id = frame.request_id()?;
        if self
            .tracked
            .get(id)
            .is_some_and(|tracked| tracked.is_answered_by(frame))
            && let Some(tracked) = self.tracked.remove(id)
        {
            let resumed = tracked.apply(frame, &mut self.runtimes);
            self.acting_users = self.runtimes.keys().any(|scope| scope.acting_user_id.is_some());
            return resumed;
        }
        None
    }

    /// Notes how far the stream of the runtime of `frame` has come, if it is a numbered event,
    /// or that a turn streams on a runtime that does not resume.
    pub fn advance(&mut self, frame: &RawFrame) {
        let Some(scope) = frame.runtime() else { return };
        let in_use = match self.runtimes.get_mut(scope) {
            Some(in_use) => Some(in_use),
            // Keyed by the scope the client sent, which may name an acting user that events
            // leave out.
            None if self.acting_users => (self.runtimes.iter_mut())
                .find(|(own, _)| frame.is_for(own))
                .map(|(_, in_use)| in_use),
            None => None,
        };
        match (
            frame.conversation_seq(),
            in_use.and_then(|in_use| in_use.cursor.as_mut()),
        ) {
            (Some(seq), Some(cursor)) => *cursor = (*cursor).max(seq),
            (None, None) if matches!(frame.frame_type(), "stream_delta" | "turn_finished") => {
                self.unresumable = true;
            }
            _ => {}
        }
    }

    /// How many runtimes this client is subscribed to.
    pub fn subscribed(&self) -> usize {
        (self.runtimes.values())
            .filter(|in_use| in_use.subscribed.is_some())
            .count()
    }

    /// Whether every runtime this client is subscribed to resumes where it left off on a new
    /// connection (and there is one), and no other runtime streamed a turn to it.
    pub fn resumes_all(&self) -> bool {
        let subscribed: Vec<&InUse> = (self.runtimes.values())
            .filter(|in_use| in_use.subscribed.is_some())
            .collect();
        !self.unresumable && !subscribed.is_empty() && subscribed.iter().all(|in_use| in_use.cursor.is_some())
    }

    /// Forgets what was of the connection that is gone: the commands awaiting answers (they
    /// get none), and whether a runtime that does not resume streamed.
    pub fn forget_sent(&mut self) {
        self.tracked.clear();
        self.unresumable = false;
    }

    /// Every runtime to restore on a new connection.
    pub fn runtimes(&self) -> Vec<(RuntimeScope, InUse)> {
        self.runtimes.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// How this client uses a runtime, to restore it on a new connection.
#[derive(Debug, Clone, Default)]
pub(crate) struct InUse {
    pub subscribed: Option<Subscribed>,
    /// The external tools this client registered for it (registrations die with a socket).
    pub tools: Option<Vec<ExternalToolGroup>>,
    /// The last `conversation_seq` it has had, when it was subscribed with `resume_after`:
    /// the `resume_after` of its restore.
    pub cursor: Option<u64>,
}

impl InUse {
    /// Subscribed by `runtime_start`, which registered `tools` (or none), resuming from
    /// `cursor` if it was subscribed with `resume_after`.
    fn started(&mut self, tools: Option<Vec<ExternalToolGroup>>, cursor: Option<u64>) {
        self.subscribed = Some(Subscribed::RuntimeStart);
        self.tools = tools;
        self.resumes_from(cursor);
    }

    /// Resumes from `cursor`, or from further on if events got ahead of the answer (over the
    /// other socket of a split pair); `None`: it does not resume.
    fn resumes_from(&mut self, cursor: Option<u64>) {
        self.cursor = cursor.map(|cursor| self.cursor.map_or(cursor, |seen| seen.max(cursor)));
    }

    /// Subscribed by `sync`, unless `runtime_start` subscribed it already; resuming from
    /// `cursor` if it was subscribed with `resume_after`.
    fn synced(&mut self, cursor: Option<u64>) {
        self.subscribed.get_or_insert(Subscribed::Sync);
        self.resumes_from(cursor);
    }

    /// Its tools replaced by `runtime_external_tools_update`.
    fn registered(&mut self, tools: Vec<ExternalToolGroup>) {
        self.tools = Some(tools);
    }
}

/// How a runtime was subscribed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Subscribed {
    RuntimeStart,
    Sync,
}

/// A sent command that subscribes to runtimes or registers tools, once answered.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Tracked {
    RuntimeStart {
        request_id: String,
        #[serde(default)]
        external_tools: Option<Vec<ExternalToolGroup>>,
        #[serde(default)]
        resume_after: Option<u64>,
    },
    Sync {
        request_id: Option<String>,
        runtime: RuntimeScope,
        #[serde(default)]
        resume_after: Option<u64>,
    },
    RuntimeExternalToolsUpdate {
        request_id: String,
        updates: Vec<ExternalToolsUpdate>,
    },
}

/// The part of an answer that says whether the command took effect. Unlike
/// `command::check_answer`, which refuses only an explicit `false`, a runtime counts as in use
/// only on an explicit `success: true`.
#[derive(Deserialize)]
struct Outcome {
    #[serde(default)]
    success: bool,
    /// Where the stream resumes, for a subscription with `resume_after` on a server that
    /// supports it.
    #[serde(default)]
    resume: Option<Resume>,
}

/// The `resume` of a subscription's answer.
#[derive(Deserialize)]
struct Resume {
    resumed: bool,
    last_seq: u64,
}

impl Tracked {
    /// Reads a sent command: its `request_id` and what its answer would change, or
    /// `None` for any other frame (or one without a `request_id`, which gets no answer).
    pub fn of(text: &str) -> Option<(String, Tracked)> {
        // The type first: most frames sent (inputs, tool results) are none of these, and the
        // tagged enum would buffer the whole frame to find out.
        #[derive(Deserialize)]
        struct Kind<'a> {
            #[serde(rename = "type", borrow)]
            frame_type: Cow<'a, str>,
        }
        let kind: Kind<'_> = serde_json::from_str(text).ok()?;
        if !matches!(
            &*kind.frame_type,
            "runtime_start" | "sync" | "runtime_external_tools_update"
        ) {
            return None;
        }
        let tracked: Tracked = serde_json::from_str(text).ok()?;
        let request_id = match &tracked {
            Tracked::RuntimeStart { request_id, .. } | Tracked::RuntimeExternalToolsUpdate { request_id, .. } => {
                request_id.clone()
            }
            Tracked::Sync { request_id, .. } => request_id.clone()?,
        };
        Some((request_id, tracked))
    }

    /// Whether `frame` (which carries the command's `request_id`) is its answer or its refusal.
    pub fn is_answered_by(&self, frame: &RawFrame) -> bool {
        let command = match self {
            Tracked::RuntimeStart { .. } => "runtime_start",
            Tracked::Sync { .. } => "sync",
            Tracked::RuntimeExternalToolsUpdate { .. } => "runtime_external_tools_update",
        };
        let answer = meta::request(command).map(|request| request.answer);
        Some(frame.frame_type()) == answer || frame.frame_type() == "error"
    }

    /// Whether `resume_after: 0` is to be added to the command, a subscription without one
    /// when the client is `resuming` (it then counts as sent with it).
    pub fn ask_to_resume(&mut self, resuming: bool) -> bool {
        match self {
            Tracked::RuntimeStart { resume_after, .. } | Tracked::Sync { resume_after, .. }
                if resuming && resume_after.is_none() =>
            {
                *resume_after = Some(0);
                true
            }
            _ => false,
        }
    }

    /// The `resume_after` it was sent with, if it is a subscription.
    pub fn resume_after(&self) -> Option<u64> {
        match self {
            Tracked::RuntimeStart { resume_after, .. } | Tracked::Sync { resume_after, .. } => *resume_after,
            Tracked::RuntimeExternalToolsUpdate { .. } => None,
        }
    }

    /// Notes in `runtimes` how a successful `answer` makes this client use runtimes. For a
    /// subscription sent with `resume_after`, returns whether it resumed (`false` when it
    /// failed).
    pub fn apply(self, answer: &RawFrame, runtimes: &mut HashMap<RuntimeScope, InUse>) -> Option<bool> {
        let sent = self.resume_after();
        let outcome = answer.parse::<Outcome>().ok().filter(|outcome| outcome.success);
        let Some(outcome) = outcome else {
            return sent.map(|_| false);
        };
        // The answer comes before the numbered events: the cursor is the one sent, or, when the
        // stream did not resume, the one the answer gives.
        let resume = outcome.resume.as_ref();
        let cursor = sent
            .zip(resume)
            .map(|(sent, resume)| if resume.resumed { sent } else { resume.last_seq });
        let resumed = sent.map(|_| resume.is_some_and(|resume| resume.resumed));
        match self {
            Tracked::RuntimeStart { external_tools, .. } => {
                if let Some(scope) = answer.runtime() {
                    (runtimes.entry(scope.clone()).or_default()).started(external_tools, cursor);
                }
            }
            Tracked::Sync { runtime, .. } => runtimes.entry(runtime).or_default().synced(cursor),
            Tracked::RuntimeExternalToolsUpdate { updates, .. } => {
                for update in updates {
                    for scope in update.runtimes {
                        runtimes
                            .entry(scope)
                            .or_default()
                            .registered(update.external_tools.clone());
                    }
                }
            }
        }
        resumed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_commands_that_change_what_is_restored_are_tracked() {
        let start = r#"{"type":"runtime_start","request_id":"rs-1","agent_id":"a"}"#;
        assert!(matches!(Tracked::of(start), Some((id, Tracked::RuntimeStart { .. })) if id == "rs-1"));
        let sync = r#"{"type":"sync","request_id":"s-1","runtime":{"agent_id":"a","conversation_id":"c"}}"#;
        assert!(matches!(Tracked::of(sync), Some((id, Tracked::Sync { .. })) if id == "s-1"));
        // A sync without a request_id gets no answer to wait for.
        assert!(Tracked::of(r#"{"type":"sync","runtime":{"agent_id":"a","conversation_id":"c"}}"#).is_none());
        assert!(Tracked::of(r#"{"type":"input","request_id":"i-1"}"#).is_none());
        assert!(Tracked::of("not json").is_none());
    }

    #[test]
    fn only_a_successful_answer_is_applied() {
        let (_, tracked) = Tracked::of(r#"{"type":"runtime_start","request_id":"rs-1"}"#).unwrap();
        let failed =
            RawFrame::from(r#"{"type":"runtime_start_response","request_id":"rs-1","success":false}"#.to_owned());
        assert!(tracked.is_answered_by(&failed));
        let mut runtimes = HashMap::new();
        tracked.apply(&failed, &mut runtimes);
        assert!(runtimes.is_empty());

        let (_, tracked) = Tracked::of(r#"{"type":"runtime_start","request_id":"rs-2"}"#).unwrap();
        let started = RawFrame::from(
            r#"{"type":"runtime_start_response","request_id":"rs-2","success":true,"runtime":{"agent_id":"a","conversation_id":"c"}}"#
                .to_owned(),
        );
        assert!(!tracked.is_answered_by(&RawFrame::from(r#"{"type":"pong","request_id":"rs-2"}"#.to_owned())));
        tracked.apply(&started, &mut runtimes);
        assert!(runtimes.contains_key(&RuntimeScope::new("a", "c")));
    }
}
