//! Running the checks: the connection every check shares (the server's capabilities), the
//! helpers that set up a runtime or play a turn, and the list of checks.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use letta_app_server_protocol::compat::Validator;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::{Value, json};

use super::report::{CheckResult, Outcome, Report, ServerInfo};
use super::wire::{Conn, Dialer, delta, loop_status, summarize};
use super::{Options, Trouble, abort, approvals, connections, external, malformed, queue, start, tier_b, turns};

/// Why a check stopped early.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The server broke the protocol: the reason.
    Fail(String),
    /// The check does not apply: the reason.
    Skip(String),
}

/// A step of a check; `?` ends the check with the stop.
pub(crate) type Step<T> = Result<T, Stop>;

/// How a check ended when it did not stop: passed, with an optional note.
pub(crate) type Verdict = Step<Option<String>>;

/// Fails the check with a formatted reason unless the condition holds.
macro_rules! ensure {
    ($condition:expr, $($reason:tt)+) => {
        if !$condition {
            return Err($crate::conformance::driver::Stop::Fail(format!($($reason)+)));
        }
    };
}
pub(crate) use ensure;

/// Declares the checks: their names, what each covers, and the function that runs it.
macro_rules! checks {
    ($($name:literal => $run:path : $what:literal,)+) => {
        /// Every check, in the order they run: its name and what it covers.
        pub const CHECKS: &[(&str, &str)] = &[$(($name, $what)),+];

        async fn dispatch(name: &str, ctx: &Ctx) -> Verdict {
            match name {
                $($name => $run(ctx).await,)+
                _ => Err(Stop::Fail(format!("no check is named {name}"))),
            }
        }
    };
}

checks! {
    "runtime_start.create" => start::create: "§5 (a): runtime_start creating an agent and a conversation, the answer, then the replay in order",
    "runtime_start.join" => start::join: "§3.2: runtime_start naming an existing agent and conversation joins it (nothing created) and replays",
    "runtime_start.unknown_agent" => start::unknown_agent: "§2.5: runtime_start for an agent that does not exist fails with the other fields empty",
    "runtime_start.agent_free" => start::agent_free: "§8.2: an agent-free conversation (when `agent_free_conversations` is claimed) runs a turn",
    "turn.streamed" => turns::streamed: "§5 (b): input_accepted started, loop statuses in order, text deltas, usage, stop_reason, turn_finished",
    "turn.model_error" => turns::model_error: "§5 (i): a model that answers HTTP 400: a loop_error, turn_finished with the error reported, a terminal loop_error; the next turn runs",
    "approval.allow" => approvals::allow: "§5 (c): Bash in standard mode asks; allowed, the tool runs and the model gets its result",
    "approval.deny" => approvals::deny: "§5 (c): denied, the model gets the denial; a second answer is no longer pending",
    "external_tool.result" => external::result: "§5 (d): a controller-owned tool is called, answered, and its result reaches the model",
    "external_tool.error" => external::error: "§3.11: an external tool answered with an error gives `External tool execution error: …`",
    "external_tool.update" => external::update: "§3.11 (`runtime_external_tools_update`): tools registered by update are called like those of runtime_start",
    "queue.coalesce" => queue::coalesce: "§5 (e): two inputs sent while busy are queued, then run as one turn; a repeated client_message_id runs nothing",
    "queue.remove" => queue::remove: "§3.4: remove_queue_item takes a queued input out; it never runs",
    "abort.idle" => abort::idle: "§3.12: abort_message with nothing running answers aborted: false",
    "abort.streaming" => abort::streaming_turn: "§5 (f): abort while streaming: Interrupted, the answer, turn_finished cancelled; the next input runs",
    "reconnect.sync" => connections::reconnect_sync: "§5 (g): a new socket syncs an idle conversation (replay in order) and runs a turn",
    "reconnect.midturn" => connections::reconnect_midturn: "§5 (g), §8.7: the only socket drops mid-turn; a new socket finds the turn ended and runs another",
    "second_connection" => connections::second_connection: "§5 (h): a second socket joins, sees the same events, answers the first one's approval",
    "malformed.not_json" => malformed::not_json: "§1.8: text that is not JSON is dropped or answered `malformed_json`; the socket stays",
    "malformed.unknown_type" => malformed::unknown_type: "§1.8: an unknown `type` is dropped or answered `unknown_type`",
    "malformed.bad_field" => malformed::bad_field: "§1.8: a known command with a field of the wrong type is dropped or answered `invalid_frame`",
    "malformed.bad_payload" => malformed::bad_payload: "§1.8: an input with an unknown payload kind gets a non-terminal loop_error and no acceptance",
    "tier_b.agent_list" => tier_b::agent_list: "§4.6 (`agent_management`): agent_list finds the kit's agent",
    "tier_b.agent_retrieve" => tier_b::agent_retrieve: "§4.6 (`agent_management`): agent_retrieve answers the agent",
    "tier_b.conversation_list" => tier_b::conversation_list: "§4.7 (`conversation_management`): conversation_list finds the kit's conversation",
    "tier_b.conversation_messages_list" => tier_b::conversation_messages_list: "§4.7 (`conversation_management`): the history lists a finished turn's reply",
    "tier_b.list_models" => tier_b::list_models: "§4.3: list_models lists the model the kit's agents use",
    "tier_b.list_memory" => tier_b::list_memory: "§4.2 (`memory_management`): list_memory answers in chunks ending with done: true",
}

/// What every check shares: the options, the way to connect, the server's own description.
pub(crate) struct Ctx {
    pub(crate) options: Options,
    dialer: Dialer,
    /// The `app_server_info_response` of the first connection.
    pub(crate) info: Value,
    /// Makes the names and texts of this run unique.
    nonce: String,
    counter: AtomicU64,
    /// The check running.
    check: Mutex<&'static str>,
}

impl Ctx {
    /// Opens a socket; `name` labels it in failure reasons.
    pub(crate) async fn connect(&self, name: &'static str) -> Step<Conn> {
        let check = *self.check.lock().unwrap_or_else(PoisonError::into_inner);
        self.dialer.connect(check, name).await.map_err(Stop::Fail)
    }

    /// The text `label-<nonce>-<n>`, unique in this run and across runs.
    pub(crate) fn unique(&self, label: &str) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed) + 1;
        format!("{label}-{}-{n}", self.nonce)
    }

    /// Skips the check unless the server claims `capability` in `app_server_info`.
    pub(crate) fn require(&self, capability: &str) -> Step<()> {
        match self.info["capabilities"][capability].as_bool() {
            Some(true) => Ok(()),
            Some(false) => Err(Stop::Skip(format!("the server reports `{capability}: false`"))),
            None => Err(Stop::Skip(format!("the server does not report `{capability}`"))),
        }
    }

    /// `runtime_start` creating an agent on the kit's model and a conversation, with `extra`
    /// fields (`mode`, `external_tools`); waits for the answer and the replay that follows it.
    pub(crate) async fn start(&self, conn: &mut Conn, extra: Value) -> Step<Scope> {
        Ok(self.start_answered(conn, extra).await?.0)
    }

    /// [`Ctx::start`], also returning the `runtime_start_response`.
    pub(crate) async fn start_answered(&self, conn: &mut Conn, extra: Value) -> Step<(Scope, Value)> {
        let mut frame = json!({
            "type": "runtime_start",
            "create_agent": {
                "body": {"name": self.unique("conformance"), "model": self.options.model},
                "memfs": false,
                "pin_global": false,
            },
            "create_conversation": {},
        });
        if let (Some(frame), Some(extra)) = (frame.as_object_mut(), extra.as_object()) {
            frame.extend(extra.clone());
        }
        started(conn, frame).await
    }

    /// `runtime_start` joining the conversation of `scope`; waits for the replay.
    pub(crate) async fn join(&self, conn: &mut Conn, scope: &Scope) -> Step<Value> {
        let mut frame = json!({"type": "runtime_start", "conversation_id": scope.conversation_id()});
        if let Some(agent) = scope.agent_id() {
            frame["agent_id"] = json!(agent);
        }
        Ok(started(conn, frame).await?.1)
    }

    /// Sends an `input` with one user message carrying a fresh `client_message_id` and returns
    /// the `input_accepted`, which must accept it.
    pub(crate) async fn say(&self, conn: &mut Conn, scope: &Scope, text: &str) -> Step<Value> {
        let (accepted, _) = self.say_with_id(conn, scope, text).await?;
        Ok(accepted)
    }

    /// [`Ctx::say`], also returning the `client_message_id` it sent.
    pub(crate) async fn say_with_id(&self, conn: &mut Conn, scope: &Scope, text: &str) -> Step<(Value, String)> {
        let id = self.unique("cm");
        let accepted = conn.request(scope.input(text, &id), "input_accepted").await?;
        ensure!(
            accepted["accepted"] == true,
            "{}: the input was not accepted: {}",
            conn.name(),
            accepted["error"].as_str().unwrap_or("no error given")
        );
        Ok((accepted, id))
    }

    /// Waits for a frame of the scope's running turn that `matches`; fails at once if the turn
    /// finishes first.
    pub(crate) async fn during_turn(
        &self,
        conn: &mut Conn,
        scope: &Scope,
        what: &str,
        matches: impl Fn(&Value) -> bool,
    ) -> Step<usize> {
        conn.wait_unless(what, matches, scope.frame("turn_finished")).await
    }

    /// Waits for the scope's `turn_finished`; returns its position.
    pub(crate) async fn turn_finished(&self, conn: &mut Conn, scope: &Scope) -> Step<usize> {
        conn.wait_for("`turn_finished`", scope.frame("turn_finished")).await
    }

    /// Plays a turn to its end and checks it ended with `end_turn`; returns the position of its
    /// `turn_finished`.
    pub(crate) async fn turn(&self, conn: &mut Conn, scope: &Scope, text: &str) -> Step<usize> {
        self.say(conn, scope, text).await?;
        let at = self.turn_finished(conn, scope).await?;
        ended_normally(conn, at)?;
        Ok(at)
    }
}

/// Sends a `runtime_start`, which must succeed, and waits for the replay after its answer (the
/// `update_subagent_state` that ends it); returns the scope and the answer.
async fn started(conn: &mut Conn, frame: Value) -> Step<(Scope, Value)> {
    let answer = conn.request(frame, "runtime_start_response").await?;
    ensure!(
        answer["success"] == true,
        "{}: runtime_start failed: {}",
        conn.name(),
        answer["error"].as_str().unwrap_or("no error given")
    );
    let scope = Scope::of(&answer)?;
    conn.wait_for(
        "replay (`update_subagent_state`) after `runtime_start_response`",
        scope.frame("update_subagent_state"),
    )
    .await?;
    Ok((scope, answer))
}

/// Fails unless the `turn_finished` at `at` says `end_turn`.
pub(crate) fn ended_normally(conn: &Conn, at: usize) -> Step<()> {
    let finished = conn.frame(at);
    let hint = match finished["stop_reason"].as_str() {
        Some("llm_api_error") => "; does the server reach the kit's model server (`conformance --serve-model`)?",
        _ => "",
    };
    ensure!(
        finished["stop_reason"] == "end_turn",
        "{}: the turn finished with `stop_reason: {}`{}{hint}",
        conn.name(),
        finished["stop_reason"],
        finished["error"]
            .as_str()
            .map(|error| format!(" ({error})"))
            .unwrap_or_default()
    );
    Ok(())
}

/// A runtime scope (`{agent_id, conversation_id}`), as a `runtime_start_response` gave it.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    runtime: Value,
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.runtime["agent_id"], self.runtime["conversation_id"])
    }
}

impl Scope {
    /// The scope of a successful `runtime_start_response`.
    pub(crate) fn of(answer: &Value) -> Step<Self> {
        let runtime = &answer["runtime"];
        ensure!(
            runtime["conversation_id"].is_string()
                && (runtime["agent_id"].is_string() || runtime["agent_id"].is_null()),
            "`runtime_start_response` has no runtime scope: {}",
            runtime
        );
        Ok(Self {
            runtime: json!({"agent_id": runtime["agent_id"], "conversation_id": runtime["conversation_id"]}),
        })
    }

    /// The scope as the wire writes it.
    pub(crate) fn runtime(&self) -> &Value {
        &self.runtime
    }

    /// The agent, `None` for an agent-free conversation.
    pub(crate) fn agent_id(&self) -> Option<&str> {
        self.runtime["agent_id"].as_str()
    }

    /// The conversation.
    pub(crate) fn conversation_id(&self) -> &str {
        self.runtime["conversation_id"].as_str().unwrap_or_default()
    }

    /// Whether `frame` belongs to this scope (its `runtime` names it).
    pub(crate) fn owns(&self, frame: &Value) -> bool {
        let runtime = &frame["runtime"];
        runtime["conversation_id"] == self.runtime["conversation_id"] && runtime["agent_id"] == self.runtime["agent_id"]
    }

    /// A test for the scope's frames of type `kind`.
    pub(crate) fn frame(&self, kind: &'static str) -> impl Fn(&Value) -> bool + '_ {
        move |f| f["type"] == kind && self.owns(f)
    }

    /// A test for the scope's `update_loop_status` with `status`.
    pub(crate) fn status(&self, status: &'static str) -> impl Fn(&Value) -> bool + '_ {
        move |f| loop_status(f) == Some(status) && self.owns(f)
    }

    /// A test for the scope's `stream_delta`s with `message_type`.
    pub(crate) fn delta(&self, message_type: &'static str) -> impl Fn(&Value) -> bool + '_ {
        move |f| delta(f) == Some(message_type) && self.owns(f)
    }

    /// A test for the scope's `update_device_status` with `is_processing`.
    pub(crate) fn device(&self, processing: bool) -> impl Fn(&Value) -> bool + '_ {
        move |f| {
            f["type"] == "update_device_status" && self.owns(f) && f["device_status"]["is_processing"] == processing
        }
    }

    /// An `input` of one user message with `client_message_id`.
    pub(crate) fn input(&self, text: &str, client_message_id: &str) -> Value {
        json!({
            "type": "input",
            "runtime": self.runtime,
            "payload": {
                "kind": "create_message",
                "messages": [{"role": "user", "content": text, "client_message_id": client_message_id}],
            },
        })
    }
}

/// The text of the `assistant_message` deltas among `frames`, concatenated.
pub(crate) fn assistant_text(frames: &[Value]) -> String {
    frames
        .iter()
        .filter(|f| delta(f) == Some("assistant_message"))
        .map(|f| match &f["delta"]["content"] {
            Value::String(text) => text.clone(),
            Value::Array(parts) => parts.iter().filter_map(|part| part["text"].as_str()).collect(),
            _ => String::new(),
        })
        .collect()
}

/// One expected frame of a sequence: what it is, and a test.
pub(crate) type Expect<'a> = (&'a str, &'a dyn Fn(&Value) -> bool);

/// Fails unless `frames` hold each of `expected` in turn (other frames may come between); the
/// reason names the first one missing and lists what came.
pub(crate) fn in_order(conn: &Conn, frames: &[Value], expected: &[Expect<'_>]) -> Step<()> {
    let mut from = 0;
    let mut previous = "the start";
    for (what, matches) in expected {
        let Some(at) = find(&frames[from..], matches) else {
            return Err(Stop::Fail(format!(
                "{}: expected {what} after {previous}; the frames were: {}",
                conn.name(),
                summarize(frames)
            )));
        };
        from += at + 1;
        previous = what;
    }
    Ok(())
}

/// The position of the first frame of `frames` that `matches`.
pub(crate) fn find(frames: &[Value], matches: impl Fn(&Value) -> bool) -> Option<usize> {
    frames.iter().position(matches)
}

/// The first delta of `frames` with `message_type`.
pub(crate) fn find_delta<'a>(frames: &'a [Value], message_type: &str) -> Option<&'a Value> {
    frames.iter().find(|f| delta(f) == Some(message_type))
}

/// The checks `options` selects: every check whose name, or the group before its first `.`,
/// is in `only` (all when `only` is empty), and in neither way in `skip`.
fn select(options: &Options) -> Result<Vec<&'static str>, Trouble> {
    let names_a_check = |filter: &str| {
        CHECKS
            .iter()
            .any(|(name, _)| *name == filter || name.split('.').next() == Some(filter))
    };
    if let Some(unknown) = options
        .only
        .iter()
        .chain(&options.skip)
        .find(|filter| !names_a_check(filter))
    {
        return Err(Trouble::Usage(format!(
            "no check or group of checks is named `{unknown}` (see `conformance --list`)"
        )));
    }
    let matches = |filters: &[String], name: &str| {
        filters
            .iter()
            .any(|filter| filter == name || name.split('.').next() == Some(filter.as_str()))
    };
    Ok(CHECKS
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| options.only.is_empty() || matches(&options.only, name))
        .filter(|name| !matches(&options.skip, name))
        .collect())
}

/// A TLS configuration trusting the Mozilla roots and the certificates of `ca_pem`.
fn tls_config(ca_pem: Option<&[u8]>) -> Result<Arc<ClientConfig>, Trouble> {
    let invalid = |reason: String| Trouble::Usage(format!("TLS: {reason}"));
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(pem) = ca_pem {
        let added = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(format!("the CA certificates are not PEM ({e})")))?;
        if added.is_empty() {
            return Err(invalid("no PEM certificate among the CA certificates".into()));
        }
        for certificate in added {
            roots
                .add(certificate)
                .map_err(|e| invalid(format!("a CA certificate cannot be used: {e}")))?;
        }
    }
    let config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Runs the selected checks one after the other; see [`super::run`].
pub(crate) async fn run(options: &Options) -> Result<Report, Trouble> {
    let selected = select(options)?;
    let tls = if options.url.starts_with("wss://") {
        Some(tls_config(options.ca_pem.as_deref())?)
    } else if options.url.starts_with("ws://") {
        None
    } else {
        return Err(Trouble::Usage(format!(
            "the URL must start with ws:// or wss://: {}",
            options.url
        )));
    };
    let dialer = Dialer {
        url: options.url.clone(),
        token: options.token.clone(),
        tls,
        frame_timeout: options.frame_timeout,
        validator: Arc::new(Validator::current().keeping_unknown()),
        record: options.record.clone(),
    };
    if let Some(dir) = &options.record {
        std::fs::create_dir_all(dir).map_err(|e| Trouble::Usage(format!("creating {}: {e}", dir.display())))?;
        // The probe's sockets append to its transcript, as a check's do: begin it afresh.
        let _ = std::fs::remove_file(dir.join("app_server_info.jsonl"));
    }
    let mut probe = dialer
        .connect("app_server_info", "info")
        .await
        .map_err(Trouble::Connect)?;
    let info = probe
        .request(json!({"type": "app_server_info"}), "app_server_info_response")
        .await
        .map_err(|stop| match stop {
            Stop::Fail(reason) | Stop::Skip(reason) => Trouble::Connect(format!("app_server_info: {reason}")),
        })?;
    probe.close().await;
    let ctx = Ctx {
        options: options.clone(),
        dialer,
        info,
        nonce: format!("{:08x}", RandomState::new().hash_one(std::process::id()) as u32),
        counter: AtomicU64::new(0),
        check: Mutex::new(""),
    };
    let mut report = Report {
        server: ServerInfo {
            version: ctx.info["letta_code_version"].as_str().unwrap_or("?").to_owned(),
            protocol_version: ctx.info["protocol_version"].as_i64().unwrap_or_default(),
            backend: ctx.info["backend"].as_str().unwrap_or("?").to_owned(),
        },
        checks: Vec::new(),
    };
    for name in selected {
        *ctx.check.lock().unwrap_or_else(PoisonError::into_inner) = name;
        if let Some(dir) = &options.record {
            // The check's sockets append to its transcript: begin it afresh.
            let _ = std::fs::remove_file(dir.join(format!("{name}.jsonl")));
        }
        let (outcome, reason) = match dispatch(name, &ctx).await {
            Ok(note) => (Outcome::Pass, note),
            Err(Stop::Fail(reason)) => (Outcome::Fail, Some(reason)),
            Err(Stop::Skip(reason)) => (Outcome::Skip, Some(reason)),
        };
        report.checks.push(CheckResult { name, outcome, reason });
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(only: &[&str], skip: &[&str]) -> Options {
        Options {
            only: only.iter().map(|s| (*s).to_owned()).collect(),
            skip: skip.iter().map(|s| (*s).to_owned()).collect(),
            ..Options::new("ws://127.0.0.1:1/ws")
        }
    }

    #[test]
    fn filters_name_checks_or_their_groups() {
        assert_eq!(select(&options(&[], &[])).expect("all").len(), CHECKS.len());
        assert_eq!(
            select(&options(&["approval", "turn.streamed"], &["approval.deny"])).expect("some"),
            ["turn.streamed", "approval.allow"]
        );
        let Err(Trouble::Usage(message)) = select(&options(&["approvals"], &[])) else {
            panic!("an unknown filter is a usage error");
        };
        assert!(message.contains("`approvals`"), "{message}");
    }

    #[test]
    fn check_names_are_unique() {
        let mut names: Vec<&str> = CHECKS.iter().map(|(name, _)| *name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CHECKS.len());
    }
}
