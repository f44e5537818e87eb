//! The conformance kit: drives any App Server (this project's, real Letta, a third-party one)
//! through the lifecycles of `docs/protocol.md` §5 and the commands of §3, over raw websocket
//! frames, and reports one result per check.
//!
//! Every frame received is checked against this version's schema as a receiver of this version
//! judges it ([`Validator::keeping_unknown`](letta_app_server_protocol::compat::Validator::keeping_unknown):
//! an unknown server frame type, or an unknown value of an open enum, is kept) and every
//! socket's `event_seq` against its gap-free sequence; a violation fails the check that received
//! it. The checks judge behaviour only: frame types, their order, and the fields and values the
//! protocol fixes — never ids or timestamps (beyond ids that must match each other, such as a
//! `control_request`'s `perm-<tool_call_id>`). Each check creates its own agent and conversation,
//! so checks are independent and may be selected with [`Options::only`] and [`Options::skip`].
//! A check whose capability the server does not claim in `app_server_info` is skipped.
//!
//! Servers need a model that behaves predictably: the agents are created with
//! [`Options::model`] (default [`DEFAULT_MODEL`]), which the server under test must resolve to
//! the kit's model server, [`serve_model`] (an OpenAI-compatible Chat Completions server steered
//! by directives in the user's messages; see
//! [`Conformance`]). Give its base URL to the server, for
//! example as `LLAMA_CPP_BASE_URL`, the variable both this project's server and real Letta read
//! for `llama.cpp/…` handles.
//!
//! From a test (with the server under test started on the model server's base URL):
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use letta_app_server_tools::conformance::{self, Options, Outcome};
//!
//! let model = conformance::serve_model(0, conformance::DEFAULT_MODEL)?;
//! // … start the server under test with LLAMA_CPP_BASE_URL = model.base_url …
//! let report = conformance::run(&Options::new("ws://127.0.0.1:4500/ws")).await?;
//! for check in report.checks.iter().filter(|check| check.outcome == Outcome::Fail) {
//!     eprintln!("{}: {}", check.name, check.reason.as_deref().unwrap_or_default());
//! }
//! assert!(report.passed(), "{}", report.to_text());
//! # Ok(())
//! # }
//! ```

mod abort;
mod approvals;
mod connections;
mod driver;
mod external;
mod malformed;
mod queue;
mod report;
mod start;
mod tier_b;
mod turns;
mod wire;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use letta_app_server_mock_llm::{Conformance, MockServer};

pub use driver::CHECKS;
pub use report::{CheckResult, Outcome, Report, ServerInfo};

/// The model handle agents are created with unless [`Options::model`] says otherwise.
pub const DEFAULT_MODEL: &str = "llama.cpp/conformance";

/// How long a check waits for a frame by default.
pub const DEFAULT_FRAME_TIMEOUT: Duration = Duration::from_secs(15);

/// What to check and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// The server's websocket URL, `ws://` or `wss://` (`ws://127.0.0.1:4500/ws`).
    pub url: String,
    /// Sent as `Authorization: Bearer <token>` with every websocket upgrade.
    pub token: Option<String>,
    /// PEM certificates of CAs to trust for `wss://`, besides the Mozilla roots.
    pub ca_pem: Option<Vec<u8>>,
    /// The model handle agents are created with (`llama.cpp/<name>`): it must reach the kit's
    /// model server.
    pub model: String,
    /// Run only these checks: names (`approval.allow`) or groups (`approval`); all when empty.
    pub only: Vec<String>,
    /// Leave out these checks or groups.
    pub skip: Vec<String>,
    /// How long to wait for a frame: the longest silence a check accepts while it waits (a wait
    /// ends after six of these however busy the socket is).
    pub frame_timeout: Duration,
    /// Write what each check sent and received to `<dir>/<check>.jsonl` (JSONL records with
    /// `conn`, `ms`, `dir` and `frame`, which `validate` reads).
    pub record: Option<PathBuf>,
}

impl Options {
    /// Every check against `url`, with the defaults.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            token: None,
            ca_pem: None,
            model: DEFAULT_MODEL.to_owned(),
            only: Vec::new(),
            skip: Vec::new(),
            frame_timeout: DEFAULT_FRAME_TIMEOUT,
            record: None,
        }
    }
}

/// Why the kit could not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trouble {
    /// The options are wrong (an unknown check name, a URL that is not `ws://` or `wss://`, CA
    /// certificates that are not PEM).
    Usage(String),
    /// The server could not be reached, or did not answer `app_server_info`.
    Connect(String),
}

impl fmt::Display for Trouble {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Usage(message) => f.write_str(message),
            Self::Connect(message) => write!(f, "cannot check the server: {message}"),
        }
    }
}

impl std::error::Error for Trouble {}

/// Runs the selected checks against the server, one after the other, and reports each. Needs a
/// Tokio runtime with timers and I/O. A check that fails does not stop the others; only a server
/// that cannot be reached (or an option that is wrong) ends the run early.
pub async fn run(options: &Options) -> Result<Report, Trouble> {
    driver::run(options).await
}

/// Starts the kit's model server on `127.0.0.1:port` (a free port for 0), listing the model of
/// the handle `model` (`llama.cpp/conformance` lists `conformance`) at `GET /v1/models`. Its
/// [`base_url`](MockServer::base_url) is what the server under test needs; it serves while the
/// returned value lives (inside a Tokio runtime).
pub fn serve_model(port: u16, model: &str) -> std::io::Result<MockServer<Conformance>> {
    let server = MockServer::start_on(port, Conformance::default())?;
    server.set_models([model.split_once('/').map_or(model, |(_, name)| name)]);
    Ok(server)
}
