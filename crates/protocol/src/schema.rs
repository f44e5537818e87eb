//! JSON Schema export: one draft-07 bundle of every frame, plus `meta.json`.
//!
//! The bundle is shaped for code generators (typify, TypeScript and Python generators): tagged
//! unions are `oneOf`s of plain objects whose tag property is a `const`, with each frame body
//! inlined into its branch instead of referenced through `allOf`.

use std::collections::BTreeSet;

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::{
    BEARER_SUBPROTOCOL_PREFIX, CLIENT_FRAMES, COMMANDS, Capabilities, ClientFrame, EVENTS, PROTOCOL_VERSION,
    SERVER_FRAMES, ServerFrame, ServerFrameKind,
};

/// The keyword marking an enum or a tagged union as open (`"x-open": true`): a value or tag
/// this version does not list is kept, not rejected (`ServerFrame`, stop reasons, delta types,
/// …). Everything without it is closed. Validators ignore it (draft-07 ignores unknown
/// keywords); `letta-app-server-tools diff` reads it.
pub const OPEN_KEYWORD: &str = "x-open";

/// Title of the bundle (and name of its root union).
pub const BUNDLE_TITLE: &str = "LettaAppServerFrame";

/// The files of `schema/`, as `(file name, contents)`, exactly as `cargo xtask schema` writes
/// them.
pub fn files() -> Vec<(&'static str, String)> {
    vec![
        ("frames.schema.json", pretty(&bundle())),
        ("meta.json", pretty(&meta())),
    ]
}

/// The schema bundle: `definitions` with `ClientFrame`, `ServerFrame` and every type they use;
/// the root is the union of the two.
pub fn bundle() -> Value {
    let mut generator = SchemaSettings::draft07().into_generator();
    let client = generator.subschema_for::<ClientFrame>();
    let server = generator.subschema_for::<ServerFrame>();
    let definitions: Map<String, Value> = generator.take_definitions(true).into_iter().collect();
    let mut root = json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": BUNDLE_TITLE,
        "description": "Every frame of the Letta Code App Server v2 websocket protocol. \
            Generated from the letta-app-server-protocol crate by `cargo xtask schema`; do not edit.",
        "oneOf": [client, server],
        "definitions": definitions,
    });
    inline_tagged_variants(&mut root);
    drop_unreferenced_definitions(&mut root);
    name_frames(&mut root);
    root
}

/// Adds each frame of `ClientFrame` and `ServerFrame` as a definition of its own, named after
/// its `type` in PascalCase (`runtime_start_response` → `RuntimeStartResponse`), so generated
/// code has a named type per frame as well as the tagged unions (which keep their branches
/// inline, the shape code generators need to keep them tagged).
fn name_frames(root: &mut Value) {
    let mut named = Vec::new();
    for (union, suffix) in [
        ("ClientFrame", FRAME_NAME_SUFFIXES[0]),
        ("ServerFrame", FRAME_NAME_SUFFIXES[1]),
    ] {
        for branch in root["definitions"][union]["oneOf"].as_array().into_iter().flatten() {
            if let Some(frame_type) = branch["properties"]["type"]["const"].as_str() {
                // A type both sides send (`file_ops`): the server's frame keeps the plain name,
                // the client's takes the suffix, as in Letta Code's declarations
                // (`FileOpsCommand`).
                let both_ways = union == "ClientFrame" && SERVER_FRAMES.iter().any(|frame| frame.name == frame_type);
                named.push((pascal_case(frame_type), suffix, both_ways, branch.clone()));
            }
        }
    }
    if let Some(definitions) = root["definitions"].as_object_mut() {
        for (name, suffix, both_ways, branch) in named {
            // A body type of another frame may already hold the name (`CreateAgent`, the
            // `runtime_start.create_agent` object, against the `create_agent` frame); the frame
            // then takes the suffix Letta Code's declarations give it.
            let name = match definitions.get(&name) {
                _ if both_ways => format!("{name}{suffix}"),
                Some(existing) if *existing != branch => format!("{name}{suffix}"),
                _ => name,
            };
            let previous = definitions.insert(name.clone(), branch.clone());
            assert!(
                previous.is_none_or(|previous| previous == branch),
                "two different definitions are named `{name}`"
            );
        }
    }
}

/// What a frame's definition name gets appended when another type holds its plain name: the
/// client frame's suffix, then the server frame's (as Letta Code's declarations name them).
pub const FRAME_NAME_SUFFIXES: [&str; 2] = ["Command", "Message"];

/// `runtime_start_response` → `RuntimeStartResponse`: how a frame's definition is named after
/// its `type` (and how code generators name what they derive from tags; `-` separates words
/// too).
pub fn pascal_case(snake: &str) -> String {
    snake
        .split(['_', '-'])
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// `meta.json`: what clients need besides the frame types, for bindings and tools (the code
/// generator reads it for the Rust client, Node and Python tables): the protocol version; the
/// prefix of the bearer subprotocol; each
/// command with its response, how many frames answer it (`none`, `one`, or a `stream` of
/// responses until one carries `done: true`) and its request-id prefix; the capability flags of
/// `app_server_info_response` (those always sent, then the optional ones); the frame type lists;
/// and how each runtime event is delivered (its channel, and whether it coalesces).
pub fn meta() -> Value {
    let kind = |kind: ServerFrameKind| -> Vec<&str> {
        SERVER_FRAMES
            .iter()
            .filter(|frame| frame.kind == kind)
            .map(|frame| frame.name)
            .collect()
    };
    json!({
        "protocol_version": PROTOCOL_VERSION,
        "bearer_subprotocol_prefix": BEARER_SUBPROTOCOL_PREFIX,
        "commands": COMMANDS
            .iter()
            .map(|c| json!({
                "type": c.name,
                "response": c.response,
                "answers": c.answers,
                "request_id_prefix": c.request_id_prefix,
            }))
            .collect::<Vec<_>>(),
        "capabilities": capabilities(),
        "client_frames": CLIENT_FRAMES,
        "server_frames": SERVER_FRAMES.iter().map(|f| f.name).collect::<Vec<_>>(),
        "responses": kind(ServerFrameKind::Response),
        "events": kind(ServerFrameKind::Event),
        "notifications": kind(ServerFrameKind::Notification),
        "event_delivery": EVENTS
            .iter()
            .map(|event| (event.name.to_owned(), json!({
                "channel": event.delivery.channel,
                "coalesces": event.delivery.coalesces,
            })))
            .collect::<Map<String, Value>>(),
    })
}

/// The capability flags of `app_server_info_response`, read from [`Capabilities`]' schema:
/// `{"required": [...], "optional": [...]}`, each in declaration order.
fn capabilities() -> Value {
    let schema = schemars::schema_for!(Capabilities);
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let (always, optional): (Vec<&str>, Vec<&str>) = schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(name, _)| name.as_str())
        .partition(|name| required.contains(name));
    json!({"required": always, "optional": optional})
}

fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

/// Rewrites every tagged-union branch of the form `{properties: {tag: const}, allOf: [{$ref}]}`
/// (what schemars emits for a newtype variant) into one object with the tag and the referenced
/// body's properties, and turns `anyOf`s of const-tagged branches into `oneOf`s. Code generators
/// then see struct variants and keep the union tagged.
fn inline_tagged_variants(root: &mut Value) {
    let definitions = root["definitions"].as_object().cloned().unwrap_or_default();
    visit(root, &mut |schema| {
        let Some(object) = schema.as_object_mut() else { return };
        if let Some(branches) = object.remove("anyOf") {
            let key = if branches.as_array().is_some_and(|b| b.iter().all(is_tagged_branch)) {
                "oneOf"
            } else {
                "anyOf"
            };
            object.insert(key.into(), branches);
        }
        let Some(Value::Array(branches)) = object.get_mut("oneOf") else {
            return;
        };
        for branch in branches.iter_mut() {
            if is_tagged_branch(branch) {
                inline_branch(branch, &definitions);
            }
        }
    });
}

fn is_tagged_branch(branch: &Value) -> bool {
    branch["properties"]
        .as_object()
        .is_some_and(|properties| properties.len() == 1 && properties.values().all(|tag| tag.get("const").is_some()))
}

fn inline_branch(branch: &mut Value, definitions: &Map<String, Value>) {
    let Some(Value::Array(all_of)) = branch.as_object_mut().and_then(|b| b.remove("allOf")) else {
        return;
    };
    let [reference_schema] = all_of.as_slice() else { return };
    let Some(body) = reference(reference_schema).and_then(|name| definitions.get(&name)) else {
        return;
    };
    let Some(branch) = branch.as_object_mut() else { return };
    let Some(body) = body.as_object() else { return };
    for (key, value) in body {
        match (key.as_str(), branch.get_mut(key)) {
            ("properties", Some(Value::Object(properties))) => {
                properties.extend(
                    value
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(k, v)| (k.clone(), v.clone())),
                );
            }
            ("required", Some(Value::Array(required))) => {
                required.extend(value.as_array().into_iter().flatten().cloned())
            }
            // The branch's own `type: object` and description win; anything else the body says
            // (e.g. `additionalProperties`) is kept.
            (_, Some(_)) => {}
            (_, None) => {
                branch.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Removes definitions no longer reachable from the root (bodies that were inlined).
fn drop_unreferenced_definitions(root: &mut Value) {
    let Value::Object(mut definitions) = root["definitions"].take() else {
        return;
    };
    let mut reachable = BTreeSet::new();
    let mut pending = Vec::new();
    visit(root, &mut |schema| pending.extend(reference(schema)));
    while let Some(name) = pending.pop() {
        if reachable.insert(name.clone())
            && let Some(definition) = definitions.get_mut(&name)
        {
            visit(definition, &mut |schema| pending.extend(reference(schema)));
        }
    }
    definitions.retain(|name, _| reachable.contains(name));
    root["definitions"] = Value::Object(definitions);
}

fn reference(schema: &Value) -> Option<String> {
    let name = schema.get("$ref")?.as_str()?.strip_prefix("#/definitions/")?;
    Some(name.to_owned())
}

/// Calls `f` on every JSON object in `value`, parents before children.
fn visit(value: &mut Value, f: &mut impl FnMut(&mut Value)) {
    if value.is_object() {
        f(value);
    }
    match value {
        Value::Object(map) => map.values_mut().for_each(|child| visit(child, f)),
        Value::Array(items) => items.iter_mut().for_each(|child| visit(child, f)),
        _ => {}
    }
}
