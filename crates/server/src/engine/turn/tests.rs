//! A turn run against a recording [`TurnHost`]: no socket, no store, the scripted model.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use letta_app_server_protocol::{
    CanUseToolRequest, ContentPart, DevicePermissionMode, JsonObject, MessageContent, RuntimeEvent, StopReason,
};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{Asked, Outcome, Turn, TurnHost, run};
use crate::engine::external::Registration;
use crate::engine::toolbox::TurnTools;
use crate::history::HistoryMessage;
use crate::permissions::{Rules, Subject};
use crate::provider::scripted::Scripted;
use crate::sync::lock;
use crate::tools::ToolResult;

/// Records what the turn does to its conversation.
#[derive(Default)]
struct Recorder {
    history: Mutex<Vec<HistoryMessage>>,
    /// The run output emitted, one line per event (`message_type`, and the text or stop reason).
    emitted: Mutex<Vec<String>>,
    /// The host calls that change state, in order.
    calls: Mutex<Vec<String>>,
    /// What was stored, per run.
    saved: Mutex<Vec<HistoryMessage>>,
}

impl Recorder {
    fn log(&self, call: impl Into<String>) {
        lock(&self.calls).push(call.into());
    }
}

/// One event as a short line: the delta's `message_type` and what it says.
fn describe(event: &RuntimeEvent) -> String {
    let value = serde_json::to_value(event).expect("events serialise");
    let delta = &value["delta"];
    let kind = delta["message_type"].as_str().unwrap_or_default();
    let detail = match kind {
        "assistant_message" => delta["content"][0]["text"].clone(),
        "stop_reason" => delta["stop_reason"].clone(),
        "approval_classification_end" => delta["auto_denied_tool_call_ids"].clone(),
        "tool_return_message" => delta["tool_return"].clone(),
        "client_tool_end" => delta["status"].clone(),
        _ => Value::Null,
    };
    match detail {
        Value::Null => kind.to_owned(),
        Value::String(text) => format!("{kind} {text}"),
        other => format!("{kind} {other}"),
    }
}

impl TurnHost for Recorder {
    fn emit(&self, events: Vec<RuntimeEvent>) {
        lock(&self.emitted).extend(events.iter().map(describe));
    }

    fn readers_ready(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(std::future::ready(()))
    }

    async fn begin_run(
        &self,
        _run_id: &str,
        client_ids: Vec<String>,
        _cancel: &CancellationToken,
    ) -> Option<Arc<Vec<HistoryMessage>>> {
        self.log(format!("begin_run {client_ids:?}"));
        Some(Arc::new(lock(&self.history).clone()))
    }

    async fn resume_run(&self, _run_id: &str) {
        self.log("resume_run");
    }

    async fn append_history(&self, messages: Vec<HistoryMessage>) {
        lock(&self.history).extend(messages);
    }

    async fn save(&self, _run_id: &str, messages: Vec<HistoryMessage>) {
        lock(&self.saved).extend(messages);
    }

    fn checkpoint(&self, _run_id: &str, _partial: &HistoryMessage) {}

    async fn permissions(&self) -> (DevicePermissionMode, Rules) {
        (DevicePermissionMode::Standard, Rules::default())
    }

    async fn cwd(&self) -> String {
        std::env::temp_dir().display().to_string()
    }

    fn secrets(&self) -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    async fn memory(&self) -> Option<crate::memory::Memory> {
        None
    }

    fn memory_updated(&self, _paths: Vec<String>) {}

    fn skills(&self) -> &crate::skills::Skills {
        static NONE: std::sync::LazyLock<crate::skills::Skills> =
            std::sync::LazyLock::new(|| crate::skills::Skills::new(std::path::Path::new("/nonexistent")));
        &NONE
    }

    fn tasks(&self) -> &dyn crate::tools::Tasks {
        &crate::tools::NoTasks
    }

    async fn set_cwd(&self, cwd: String) {
        self.log(format!("set_cwd {cwd}"));
    }

    async fn ask(
        &self,
        request_id: String,
        _request: CanUseToolRequest,
        _subject: Subject,
        _cancel: &CancellationToken,
    ) -> Asked {
        self.log(format!("ask {request_id}"));
        Asked::Cancelled
    }

    async fn save_rule(&self, tool: &str, _subject: Subject, _args: &JsonObject) {
        self.log(format!("save_rule {tool}"));
    }

    async fn start_tools(&self, running: Vec<String>) {
        self.log(format!("start_tools {running:?}"));
    }

    async fn end_tools(&self, results: Vec<HistoryMessage>) {
        self.log("end_tools");
        lock(&self.history).extend(results);
    }

    async fn call_external(
        &self,
        _registration: &Registration,
        _tool_call_id: &str,
        _args: JsonObject,
        _cancel: &CancellationToken,
    ) -> ToolResult {
        ToolResult::error("no controller in this test")
    }
}

/// A turn of the scripted model, offering no tools, for a user message of `text`.
fn turn(recorder: &Recorder, text: &str) -> Turn {
    lock(&recorder.history).push(HistoryMessage::User {
        content: MessageContent::Parts(vec![ContentPart::text(text)]),
    });
    Turn {
        provider: Arc::new(Scripted),
        model: "scripted".into(),
        system: String::new(),
        reasoning_effort: None,
        tools: TurnTools::default(),
        resume: Vec::new(),
        client_ids: vec!["cm-1".into()],
        cancel: CancellationToken::new(),
        max_runs: super::MAX_RUNS_PER_TURN,
    }
}

#[tokio::test]
async fn a_reply_is_streamed_stored_and_ends_the_turn() {
    let recorder = Recorder::default();
    let outcome = run(&recorder, turn(&recorder, "hello [[deltas: 2]]")).await;
    assert_eq!(outcome, Outcome::Completed(StopReason::EndTurn));
    assert_eq!(
        *lock(&recorder.emitted),
        [
            "assistant_message t0 ",
            "assistant_message t1 ",
            "usage_statistics",
            "stop_reason end_turn"
        ]
    );
    assert_eq!(*lock(&recorder.calls), [r#"begin_run ["cm-1"]"#]);
    let saved = lock(&recorder.saved).clone();
    let [
        HistoryMessage::Assistant {
            id: Some(id),
            reasoning: None,
            text,
            tool_calls,
        },
    ] = &saved[..]
    else {
        panic!("one reply saved: {saved:?}");
    };
    assert_eq!((text.as_str(), tool_calls.len()), ("t0 t1 ", 0));
    assert!(
        id.starts_with("message-"),
        "listed under the id its deltas carried: {id}"
    );
    assert_eq!(lock(&recorder.history).last(), saved.last());
}

#[tokio::test]
async fn a_call_to_a_tool_the_turn_does_not_offer_is_denied_and_the_model_runs_again() {
    let recorder = Recorder::default();
    let outcome = run(&recorder, turn(&recorder, "[[tool: Missing {}]]")).await;
    assert_eq!(outcome, Outcome::Completed(StopReason::EndTurn));
    let call_id = match lock(&recorder.saved).first() {
        Some(HistoryMessage::Assistant { tool_calls, .. }) => tool_calls[0].id.clone(),
        other => panic!("the call is stored before it is answered, got {other:?}"),
    };
    let emitted = lock(&recorder.emitted).clone();
    assert_eq!(
        emitted[..6],
        [
            "approval_request_message".to_owned(),
            "usage_statistics".into(),
            "stop_reason requires_approval".into(),
            format!("approval_classification_end [\"{call_id}\"]"),
            "client_tool_end error".into(),
            "tool_return_message Unknown tool: Missing".into(),
        ]
    );
    assert_eq!(
        *lock(&recorder.calls),
        [r#"begin_run ["cm-1"]"#, "start_tools []", "end_tools", "begin_run []"]
    );
    assert!(
        emitted.last().is_some_and(|last| last == "stop_reason end_turn"),
        "{emitted:?}"
    );
}
