//! The protocol's tables for the three SDKs, generated from `schema/meta.json`: the protocol
//! version, every command with the frame that answers it and the prefix of its generated
//! request ids, the capability flags of `app_server_info_response`, and how each runtime event is
//! delivered. The Rust client, the Node layer and the Python package read these instead of
//! keeping copies, so that adding a command to the protocol table reaches every SDK.

use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::Value;

/// Where the Rust client's table lives.
pub const RUST_META_PATH: &str = "crates/client/src/meta.rs";
/// Where the Node layer's table lives.
pub const NODE_META_PATH: &str = "bindings/node/lib/meta.js";
/// Where the Python package's table lives.
pub const PYTHON_META_PATH: &str = "bindings/python/python/letta_app_server/meta.py";

/// The parts of `meta.json` the SDKs need (the frame type lists are for tools and tests; the
/// SDKs get their frame types from the schema).
#[derive(Debug, Deserialize)]
struct Meta {
    protocol_version: u32,
    bearer_subprotocol_prefix: String,
    commands: Vec<CommandEntry>,
    capabilities: Capabilities,
    event_delivery: indexmap::IndexMap<String, Delivery>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandEntry {
    #[serde(rename = "type")]
    frame_type: String,
    response: Option<String>,
    answers: Answers,
    request_id_prefix: Option<String>,
}

/// How many frames answer a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Answers {
    None,
    One,
    Stream,
}

impl Answers {
    fn wire(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::One => "one",
            Self::Stream => "stream",
        }
    }

    fn rust(self) -> &'static str {
        match self {
            Self::None => "None",
            Self::One => "One",
            Self::Stream => "Stream",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Capabilities {
    required: Vec<String>,
    optional: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Delivery {
    channel: Channel,
    coalesces: bool,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Channel {
    Control,
    Stream,
}

impl Channel {
    fn wire(self) -> &'static str {
        match self {
            Self::Control => "control",
            Self::Stream => "stream",
        }
    }

    fn rust(self) -> &'static str {
        match self {
            Self::Control => "Control",
            Self::Stream => "Stream",
        }
    }
}

/// A command the server answers.
struct Request<'a> {
    command: &'a str,
    answer: &'a str,
    answers: Answers,
    prefix: &'a str,
}

impl Meta {
    fn read(meta: &Value) -> Result<Self, String> {
        let meta = Self::deserialize(meta).map_err(|e| format!("schema/meta.json: {e}"))?;
        for command in &meta.commands {
            if command.response.is_some() != command.request_id_prefix.is_some() {
                return Err(format!(
                    "schema/meta.json: `{}` needs both a response and a request-id prefix, or neither",
                    command.frame_type
                ));
            }
            if command.response.is_some() == (command.answers == Answers::None) {
                return Err(format!(
                    "schema/meta.json: `{}` has a response exactly when frames answer it",
                    command.frame_type
                ));
            }
        }
        Ok(meta)
    }

    fn requests(&self) -> impl Iterator<Item = Request<'_>> {
        self.commands.iter().filter_map(|command| {
            Some(Request {
                command: &command.frame_type,
                answer: command.response.as_deref()?,
                answers: command.answers,
                prefix: command.request_id_prefix.as_deref()?,
            })
        })
    }
}

/// Commands whose Node method name a hand-written method with other semantics holds: `input`
/// sends an input without waiting (`submitInput` waits for its `input_accepted`).
const NODE_HAND_WRITTEN: &[&str] = &["input"];

/// The Node client's method of `command` (`agent_list` → `agentList`), unless a hand-written
/// method holds that name.
pub fn node_method(command: &str) -> Option<String> {
    if NODE_HAND_WRITTEN.contains(&command) {
        return None;
    }
    let mut words = command.split('_');
    let mut name = words.next().unwrap_or_default().to_owned();
    for word in words {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            name.extend(first.to_uppercase());
            name.push_str(chars.as_str());
        }
    }
    Some(name)
}

/// A command the server answers, as the SDKs' named methods see it.
pub struct Answered {
    /// The command's `type`.
    pub command: String,
    /// The `type` of the frames that answer it.
    pub answer: String,
    /// Whether a stream of them answers it (until one carries `done: true`), or one.
    pub stream: bool,
}

/// Every command of `meta` (the contents of `schema/meta.json`) that the server answers, in
/// the table's order.
pub fn answered(meta: &Value) -> Result<Vec<Answered>, String> {
    Ok(Meta::read(meta)?
        .requests()
        .map(|request| Answered {
            command: request.command.to_owned(),
            answer: request.answer.to_owned(),
            stream: request.answers == Answers::Stream,
        })
        .collect())
}

/// A string as a Rust, JavaScript or Python string literal (JSON's escapes are valid in all three
/// for the ASCII names the protocol uses).
fn quoted(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}

fn list(items: &[String]) -> String {
    items.iter().map(|item| quoted(item)).collect::<Vec<_>>().join(", ")
}

/// The name of the generated type of the frame `frame_type` (see [`crate::codegen::frame_names`]).
fn type_name<'a>(names: &'a FrameNames, frame_type: &str) -> Result<&'a str, String> {
    names
        .get(frame_type)
        .map(String::as_str)
        .ok_or_else(|| format!("schema/meta.json: `{frame_type}` is not a frame of the schema"))
}

/// Frame `type` → the name of its generated type.
pub type FrameNames = std::collections::BTreeMap<String, String>;

/// The Rust client's `meta` module for `meta` (the contents of `schema/meta.json`), with the
/// frame types' names `names`.
pub fn rust_meta(meta: &Value, names: &FrameNames) -> Result<String, String> {
    let meta = Meta::read(meta)?;
    let mut out = String::from(
        "//! The protocol's tables, generated from `schema/meta.json`: the protocol version, the\n\
         //! commands and what answers them, the capability flags of `app_server_info_response` and\n\
         //! how each runtime event is delivered; and the typed commands: every command the server\n\
         //! answers implements [`Call`](crate::Call) (one answer frame) or\n\
         //! [`StreamCall`](crate::StreamCall) (a stream of them)\n\
         //! with the type of its answer.\n\
         //!\n\
         //! @generated by `cargo xtask codegen`; do not edit by hand.\n\n",
    );
    let _ = write!(
        out,
        "/// The `protocol_version` this client speaks.\n\
         pub const PROTOCOL_VERSION: u32 = {};\n\n\
         /// A web page, which cannot set `Authorization`, sends its bearer token as a\n\
         /// `Sec-WebSocket-Protocol` value: this prefix, then the token.\n\
         pub const BEARER_SUBPROTOCOL_PREFIX: &str = {};\n\n\
         /// Every command's `type`, in the protocol table's order.\n\
         pub const COMMANDS: &[&str] = &[{}];\n\n\
         /// How many frames answer a command (besides an `error` frame).\n\
         #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]\n\
         pub enum Answers {{\n\
         \x20   /// No frame answers it.\n\
         \x20   None,\n\
         \x20   /// One response frame.\n\
         \x20   One,\n\
         \x20   /// Response frames correlated by `request_id` until one carries `done: true`.\n\
         \x20   Stream,\n\
         }}\n\n\
         /// A command the server answers with frames correlated by `request_id`.\n\
         #[derive(Debug, Clone, Copy, PartialEq, Eq)]\n\
         pub struct Request {{\n\
         \x20   /// The command's `type`.\n\
         \x20   pub command: &'static str,\n\
         \x20   /// The `type` of the frame that answers it (besides an `error`).\n\
         \x20   pub answer: &'static str,\n\
         \x20   /// How many of them: [`Answers::One`] or [`Answers::Stream`].\n\
         \x20   pub answers: Answers,\n\
         \x20   /// Generated request ids are `\"<prefix>-<n>\"`, as Letta Code's client helper numbers them.\n\
         \x20   pub request_id_prefix: &'static str,\n\
         }}\n\n\
         /// Every command with an answer.\n\
         pub const REQUESTS: &[Request] = &[\n",
        meta.protocol_version,
        quoted(&meta.bearer_subprotocol_prefix),
        list(&meta.commands.iter().map(|c| c.frame_type.clone()).collect::<Vec<_>>()),
    );
    for request in meta.requests() {
        let _ = writeln!(
            out,
            "    Request {{ command: {}, answer: {}, answers: Answers::{}, request_id_prefix: {} }},",
            quoted(request.command),
            quoted(request.answer),
            request.answers.rust(),
            quoted(request.prefix)
        );
    }
    let _ = write!(
        out,
        "];\n\n\
         /// The command of this `type`, if the server answers it.\n\
         pub fn request(command: &str) -> Option<&'static Request> {{\n\
         \x20   REQUESTS.iter().find(|request| request.command == command)\n\
         }}\n\n\
         /// How many frames answer the command of this `type` ([`Answers::None`] for one that is\n\
         /// not answered, or not known).\n\
         pub fn answers(command: &str) -> Answers {{\n\
         \x20   request(command).map_or(Answers::None, |request| request.answers)\n\
         }}\n\n\
         /// The capability flags every `app_server_info_response` carries.\n\
         pub const CAPABILITIES: &[&str] = &[{}];\n\n\
         /// The capability flags a server may leave out.\n\
         pub const OPTIONAL_CAPABILITIES: &[&str] = &[{}];\n\n\
         /// Which socket of a split session carries a runtime event.\n\
         #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]\n\
         pub enum Channel {{\n\
         \x20   /// The control socket: everything not on the stream socket.\n\
         \x20   Control,\n\
         \x20   /// The stream socket, while one is attached.\n\
         \x20   Stream,\n\
         }}\n\n\
         /// How a runtime event is delivered.\n\
         #[derive(Debug, Clone, Copy, PartialEq, Eq)]\n\
         pub struct Event {{\n\
         \x20   /// The event's `type`.\n\
         \x20   pub event: &'static str,\n\
         \x20   /// The socket of a split session it arrives on.\n\
         \x20   pub channel: Channel,\n\
         \x20   /// Whether the server may replace it by a newer one of the same type and runtime while a\n\
         \x20   /// slow reader's queue is backed up (a status snapshot; an `update_queue` with removals\n\
         \x20   /// never is).\n\
         \x20   pub coalesces: bool,\n\
         }}\n\n\
         /// Every runtime event type.\n\
         pub const EVENTS: &[Event] = &[\n",
        list(&meta.capabilities.required),
        list(&meta.capabilities.optional),
    );
    for (event, delivery) in &meta.event_delivery {
        let _ = writeln!(
            out,
            "    Event {{ event: {}, channel: Channel::{}, coalesces: {} }},",
            quoted(event),
            delivery.channel.rust(),
            delivery.coalesces
        );
    }
    out.push_str("];\n");
    for request in meta.requests() {
        let command = type_name(names, request.command)?;
        let answer = type_name(names, request.answer)?;
        let (call, answered) = match request.answers {
            Answers::Stream => ("StreamCall", "a stream of"),
            _ => ("Call", "one"),
        };
        let _ = write!(
            out,
            "\n/// `{}`, answered by {answered} `{}`.\n\
             impl crate::{call} for crate::types::{command} {{\n\
             \x20   const TYPE: &'static str = {};\n\
             \x20   type Response = crate::types::{answer};\n\
             }}\n",
            request.command,
            request.answer,
            quoted(request.command),
        );
    }
    Ok(out)
}

/// The Node layer's `lib/meta.js` for `meta`.
pub fn node_meta(meta: &Value) -> Result<String, String> {
    let methods = answered(meta)?;
    let meta = Meta::read(meta)?;
    let mut out = String::from(
        "'use strict';\n\
         // The protocol's tables, generated from `schema/meta.json`: the protocol version, the\n\
         // commands and what answers them, the capability flags of `app_server_info_response` and\n\
         // how each runtime event is delivered.\n\
         //\n\
         // @generated by `cargo xtask codegen`; do not edit by hand.\n\n",
    );
    let _ = write!(
        out,
        "/** The `protocol_version` this client speaks. */\n\
         const PROTOCOL_VERSION = {};\n\n\
         /**\n * A web page, which cannot set `Authorization`, sends its bearer token as a\n\
         \x20* `Sec-WebSocket-Protocol` value: this prefix, then the token.\n */\n\
         const BEARER_SUBPROTOCOL_PREFIX = {};\n\n\
         /** Every command's `type`, in the protocol table's order. */\n\
         const COMMANDS = Object.freeze([{}]);\n\n\
         /**\n * The commands the server answers, by `type`: the `type` of the answering frame (besides an\n\
         \x20* `error`), how many (`'one'`, or `'stream'`: until one carries `done: true`) and the prefix of\n\
         \x20* generated request ids (`\"<prefix>-<n>\"`). A command not listed is not answered.\n */\n\
         const REQUESTS = Object.freeze({{\n",
        meta.protocol_version,
        quoted(&meta.bearer_subprotocol_prefix),
        list(&meta.commands.iter().map(|c| c.frame_type.clone()).collect::<Vec<_>>()),
    );
    for request in meta.requests() {
        let _ = writeln!(
            out,
            "  {}: Object.freeze({{ answer: {}, answers: {}, requestIdPrefix: {} }}),",
            request.command,
            quoted(request.answer),
            quoted(request.answers.wire()),
            quoted(request.prefix)
        );
    }
    let _ = write!(
        out,
        "}});\n\n\
         /** The capability flags every `app_server_info_response` carries. */\n\
         const CAPABILITIES = Object.freeze([{}]);\n\n\
         /** The capability flags a server may leave out. */\n\
         const OPTIONAL_CAPABILITIES = Object.freeze([{}]);\n\n\
         /**\n * How each runtime event is delivered, by `type`: the socket of a split session it arrives on,\n\
         \x20* and whether the server may replace it by a newer one while a slow reader's queue is backed up.\n */\n\
         const EVENTS = Object.freeze({{\n",
        list(&meta.capabilities.required),
        list(&meta.capabilities.optional),
    );
    for (event, delivery) in &meta.event_delivery {
        let _ = writeln!(
            out,
            "  {event}: Object.freeze({{ channel: {}, coalesces: {} }}),",
            quoted(delivery.channel.wire()),
            delivery.coalesces
        );
    }
    out.push_str(
        "});\n\n\
         /**\n * The client's named method of each command it has no hand-written method of the same name\n\
         \x20* for (`agent_list` → `agentList`), by name: the command's `type`.\n */\n\
         const METHODS = Object.freeze({\n",
    );
    for method in methods {
        if let Some(name) = node_method(&method.command) {
            let _ = writeln!(out, "  {name}: {},", quoted(&method.command));
        }
    }
    out.push_str(
        "});\n\nmodule.exports = { BEARER_SUBPROTOCOL_PREFIX, CAPABILITIES, COMMANDS, EVENTS, METHODS, OPTIONAL_CAPABILITIES, PROTOCOL_VERSION, REQUESTS };\n",
    );
    Ok(out)
}

/// The Python package's `meta` module for `meta`.
pub fn python_meta(meta: &Value) -> Result<String, String> {
    let meta = Meta::read(meta)?;
    let mut out = String::from(
        "\"\"\"The protocol's tables, generated from `schema/meta.json`: the protocol version, the commands\n\
         and what answers them, the capability flags of `app_server_info_response` and how each runtime\n\
         event is delivered.\n\
         \n\
         @generated by `cargo xtask codegen`; do not edit by hand.\n\
         \"\"\"\n\n\
         from typing import Final, Literal, NamedTuple\n\n",
    );
    let _ = write!(
        out,
        "PROTOCOL_VERSION: Final = {}\n\
         \"\"\"The `protocol_version` this client speaks.\"\"\"\n\n\
         BEARER_SUBPROTOCOL_PREFIX: Final = {}\n\
         \"\"\"A web page, which cannot set `Authorization`, sends its bearer token as a\n\
         `Sec-WebSocket-Protocol` value: this prefix, then the token.\"\"\"\n\n\
         COMMANDS: Final = ({},)\n\
         \"\"\"Every command's `type`, in the protocol table's order.\"\"\"\n\n\n\
         class Request(NamedTuple):\n\
         \x20   \"\"\"A command the server answers with one frame correlated by `request_id`.\"\"\"\n\n\
         \x20   answer: str\n\
         \x20   \"\"\"The `type` of the frame that answers it (besides an `error`).\"\"\"\n\
         \x20   request_id_prefix: str\n\
         \x20   \"\"\"Generated request ids are `\"<prefix>-<n>\"`.\"\"\"\n\
         \x20   answers: Literal[\"one\", \"stream\"]\n\
         \x20   \"\"\"How many frames answer it: one, or a stream until one carries `done: true`.\"\"\"\n\n\n\
         REQUESTS: Final[dict[str, Request]] = {{\n",
        meta.protocol_version,
        quoted(&meta.bearer_subprotocol_prefix),
        list(&meta.commands.iter().map(|c| c.frame_type.clone()).collect::<Vec<_>>()),
    );
    for request in meta.requests() {
        let _ = writeln!(
            out,
            "    {}: Request({}, {}, {}),",
            quoted(request.command),
            quoted(request.answer),
            quoted(request.prefix),
            quoted(request.answers.wire())
        );
    }
    let _ = write!(
        out,
        "}}\n\
         \"\"\"The commands the server answers, by `type`; a command not listed is not answered.\"\"\"\n\n\
         CAPABILITIES: Final = ({},)\n\
         \"\"\"The capability flags every `app_server_info_response` carries.\"\"\"\n\n\
         OPTIONAL_CAPABILITIES: Final = ({},)\n\
         \"\"\"The capability flags a server may leave out.\"\"\"\n\n\n\
         class Delivery(NamedTuple):\n\
         \x20   \"\"\"How a runtime event is delivered.\"\"\"\n\n\
         \x20   channel: Literal[\"control\", \"stream\"]\n\
         \x20   \"\"\"The socket of a split session it arrives on.\"\"\"\n\
         \x20   coalesces: bool\n\
         \x20   \"\"\"Whether the server may replace it by a newer one of the same type and runtime while a slow\n\
         \x20   reader's queue is backed up (a status snapshot; an `update_queue` with removals never is).\"\"\"\n\n\n\
         EVENTS: Final[dict[str, Delivery]] = {{\n",
        list(&meta.capabilities.required),
        list(&meta.capabilities.optional),
    );
    for (event, delivery) in &meta.event_delivery {
        let _ = writeln!(
            out,
            "    {}: Delivery({}, {}),",
            quoted(event),
            quoted(delivery.channel.wire()),
            if delivery.coalesces { "True" } else { "False" }
        );
    }
    out.push_str("}\n\"\"\"How each runtime event is delivered, by `type`.\"\"\"\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> FrameNames {
        crate::codegen::frame_names(&letta_app_server_protocol::schema::bundle()).unwrap_or_default()
    }

    #[test]
    fn a_command_with_a_response_but_no_prefix_is_an_error() {
        let mut meta = letta_app_server_protocol::schema::meta();
        meta["commands"][0]["request_id_prefix"] = Value::Null;
        let error = rust_meta(&meta, &names()).unwrap_err();
        assert!(error.contains("`app_server_info` needs both"), "{error}");
    }

    #[test]
    fn a_command_answered_by_a_stream_is_one_in_every_sdk_table() {
        let mut meta = letta_app_server_protocol::schema::meta();
        meta["commands"][0]["answers"] = "stream".into();
        let rust = rust_meta(&meta, &names()).unwrap_or_default();
        assert!(
            rust.contains("answer: \"app_server_info_response\", answers: Answers::Stream,"),
            "{rust}"
        );
        let node = node_meta(&meta).unwrap_or_default();
        assert!(
            node.contains("answer: \"app_server_info_response\", answers: \"stream\","),
            "{node}"
        );
        let python = python_meta(&meta).unwrap_or_default();
        assert!(
            python.contains("Request(\"app_server_info_response\", \"app-server-info\", \"stream\")"),
            "{python}"
        );
        meta["commands"][0]["answers"] = "none".into();
        let error = rust_meta(&meta, &names()).unwrap_err();
        assert!(
            error.contains("has a response exactly when frames answer it"),
            "{error}"
        );
    }

    #[test]
    fn every_sdk_gets_every_command_with_an_answer() {
        let meta = letta_app_server_protocol::schema::meta();
        let (rust, node, python) = (
            rust_meta(&meta, &names()).unwrap_or_default(),
            node_meta(&meta).unwrap_or_default(),
            python_meta(&meta).unwrap_or_default(),
        );
        for command in letta_app_server_protocol::COMMANDS {
            let (Some(answer), Some(prefix)) = (command.response, command.request_id_prefix) else {
                continue;
            };
            let name = command.name;
            // `one` or `stream` (`list_memory`), and its Rust variant.
            let answers = serde_json::to_value(command.answers).unwrap_or_default();
            let answers = answers.as_str().unwrap_or_default();
            let variant = letta_app_server_protocol::schema::pascal_case(answers);
            assert!(
                rust.contains(&format!(
                    "Request {{ command: \"{name}\", answer: \"{answer}\", answers: Answers::{variant}, request_id_prefix: \"{prefix}\" }}"
                )),
                "{rust}"
            );
            assert!(
                node.contains(&format!(
                    "{name}: Object.freeze({{ answer: \"{answer}\", answers: \"{answers}\", requestIdPrefix: \"{prefix}\" }})"
                )),
                "{node}"
            );
            assert!(
                python.contains(&format!(
                    "\"{name}\": Request(\"{answer}\", \"{prefix}\", \"{answers}\")"
                )),
                "{python}"
            );
        }
    }
}
