//! Request building: the endpoint and headers from the settings, and the JSON body from a
//! [`ModelRequest`].

use std::borrow::Cow;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Uri};
use letta_app_server_protocol::{ContentPart, ImagePart, ImageSource, MessageContent, TextPart};
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use super::OpenAiSettings;
use super::failure::request_error;
use crate::history::HistoryMessage;
use crate::provider::{ModelRequest, ProviderError};

/// The `User-Agent` sent with every request.
const USER_AGENT: &str = concat!("letta-app-server/", env!("CARGO_PKG_VERSION"));

/// Where requests go.
#[derive(Clone)]
pub(super) struct Target {
    /// `{base}/chat/completions`.
    endpoint: Uri,
    /// `{base}/models`.
    models: Uri,
    authorization: Option<HeaderValue>,
}

impl Target {
    /// The endpoint and authorization header of `settings`, or why they are unusable.
    pub(super) fn from_settings(settings: &OpenAiSettings) -> Result<Self, String> {
        let base = settings.base_url.trim().trim_end_matches('/');
        if base.is_empty() {
            return Err("no base URL is configured for the OpenAI-compatible provider".to_owned());
        }
        let endpoint = api_url(base, "chat/completions")?;
        let models = api_url(base, "models")?;
        let authorization = match settings.api_key.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(key) => {
                let mut value = HeaderValue::try_from(format!("Bearer {key}"))
                    .map_err(|_| "the API key is not a valid header value".to_owned())?;
                value.set_sensitive(true);
                Some(value)
            }
        };
        Ok(Self {
            endpoint,
            models,
            authorization,
        })
    }

    /// The HTTP request of one attempt.
    pub(super) fn request(&self, body: Bytes) -> Result<Request<Full<Bytes>>, ProviderError> {
        let builder = Request::post(self.endpoint.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "text/event-stream");
        self.authorized(builder)
            .body(Full::new(body))
            .map_err(|error| request_error(format!("cannot build the request: {error}")))
    }

    /// `GET {base}/models`.
    pub(super) fn models_request(&self) -> Result<Request<Full<Bytes>>, String> {
        let builder = Request::get(self.models.clone()).header(header::ACCEPT, "application/json");
        self.authorized(builder)
            .body(Full::new(Bytes::new()))
            .map_err(|error| format!("cannot build the request: {error}"))
    }

    /// `builder` with the `User-Agent` and, with an API key, the `Authorization` header.
    fn authorized(&self, builder: hyper::http::request::Builder) -> hyper::http::request::Builder {
        let builder = builder.header(header::USER_AGENT, USER_AGENT);
        match &self.authorization {
            Some(authorization) => builder.header(header::AUTHORIZATION, authorization.clone()),
            None => builder,
        }
    }
}

/// `{base}/{path}`, if `base` is an `http` or `https` URL.
fn api_url(base: &str, path: &str) -> Result<Uri, String> {
    let endpoint: Uri = format!("{base}/{path}")
        .parse()
        .map_err(|error| format!("invalid base URL {base:?}: {error}"))?;
    match endpoint.scheme_str() {
        Some("http" | "https") if endpoint.authority().is_some() => Ok(endpoint),
        _ => Err(format!("invalid base URL {base:?}: expected http:// or https://")),
    }
}

/// The request body.
#[derive(Serialize)]
pub(super) struct WireRequest<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    stream: bool,
    stream_options: StreamOptions,
    store: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_effort: Option<&'a str>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
#[serde(tag = "role", rename_all = "lowercase")]
enum WireMessage<'a> {
    System {
        content: &'a str,
    },
    User {
        content: WireUserContent<'a>,
    },
    Assistant {
        /// `null` when the reply only calls tools.
        content: Option<&'a str>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<WireToolCall<'a>>,
    },
    Tool {
        tool_call_id: &'a str,
        content: &'a str,
    },
}

#[derive(Serialize)]
#[serde(untagged)]
enum WireUserContent<'a> {
    Text(&'a str),
    Parts(Vec<WirePart<'a>>),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WirePart<'a> {
    Text { text: Cow<'a, str> },
    ImageUrl { image_url: WireImageUrl<'a> },
}

#[derive(Serialize)]
struct WireImageUrl<'a> {
    url: ImageUrl<'a>,
}

/// An image URL; inline data is written as a `data:` URL without building it first.
enum ImageUrl<'a> {
    Data { media_type: &'a str, data: &'a str },
    Url(&'a str),
}

impl Serialize for ImageUrl<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Data { media_type, data } => serializer.collect_str(&format_args!("data:{media_type};base64,{data}")),
            Self::Url(url) => serializer.serialize_str(url),
        }
    }
}

#[derive(Serialize)]
struct WireToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunctionCall<'a>,
}

#[derive(Serialize)]
struct WireFunctionCall<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Serialize)]
struct WireTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunction<'a>,
}

#[derive(Serialize)]
struct WireFunction<'a> {
    name: &'a str,
    description: &'a str,
    parameters: &'a RawValue,
}

impl<'a> WireRequest<'a> {
    /// The body of `request`: its system prompt first, then its history and its tools.
    pub(super) fn new(request: &'a ModelRequest) -> Self {
        let mut messages = Vec::with_capacity(request.messages.len() + 1);
        if !request.system.is_empty() {
            messages.push(WireMessage::System {
                content: &request.system,
            });
        }
        messages.extend(request.messages.iter().filter_map(WireMessage::from_history));
        let tools = request
            .tools
            .iter()
            .map(|tool| WireTool {
                kind: "function",
                function: WireFunction {
                    name: &tool.name,
                    description: &tool.description,
                    parameters: &tool.parameters,
                },
            })
            .collect();
        Self {
            model: &request.model,
            messages,
            stream: true,
            stream_options: StreamOptions { include_usage: true },
            store: false,
            tools,
            reasoning_effort: request.reasoning_effort.as_deref(),
        }
    }
}

impl<'a> WireMessage<'a> {
    /// The wire form of a history message; `None` for one a model is never sent.
    fn from_history(message: &'a HistoryMessage) -> Option<Self> {
        Some(match message {
            HistoryMessage::User {
                content: MessageContent::Text(text),
            } => Self::User {
                content: WireUserContent::Text(text),
            },
            HistoryMessage::User {
                content: MessageContent::Parts(parts),
            } => Self::User {
                content: WireUserContent::Parts(parts.iter().map(WirePart::from_part).collect()),
            },
            HistoryMessage::Assistant { text, tool_calls, .. } => Self::Assistant {
                // Without tool calls OpenAI requires a content string.
                content: (!text.is_empty() || tool_calls.is_empty()).then_some(text.as_str()),
                tool_calls: tool_calls
                    .iter()
                    .map(|call| WireToolCall {
                        id: &call.id,
                        kind: "function",
                        function: WireFunctionCall {
                            name: &call.name,
                            arguments: if call.arguments.trim().is_empty() {
                                "{}"
                            } else {
                                &call.arguments
                            },
                        },
                    })
                    .collect(),
            },
            HistoryMessage::ToolResult {
                tool_call_id,
                content,
                is_error: _,
            } => Self::Tool { tool_call_id, content },
            HistoryMessage::Error { .. } => return None,
        })
    }
}

impl<'a> WirePart<'a> {
    fn from_part(part: &'a ContentPart) -> Self {
        match part {
            ContentPart::Text(TextPart { text }) => Self::Text {
                text: Cow::Borrowed(text),
            },
            ContentPart::Image(ImagePart {
                source: ImageSource::Base64 { media_type, data },
            }) => Self::ImageUrl {
                image_url: WireImageUrl {
                    url: ImageUrl::Data { media_type, data },
                },
            },
            ContentPart::Image(ImagePart {
                source: ImageSource::Url { url },
            }) => Self::ImageUrl {
                image_url: WireImageUrl {
                    url: ImageUrl::Url(url),
                },
            },
            ContentPart::Image(ImagePart {
                source: ImageSource::Letta { file_id },
            }) => Self::Text {
                text: Cow::Owned(format!(
                    "[image omitted: Letta file {file_id} cannot be sent to this model provider]"
                )),
            },
            ContentPart::Unknown(value) => {
                let kind = value
                    .get("type")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("unknown");
                Self::Text {
                    text: Cow::Owned(format!(
                        "[content part of type {kind:?} omitted: not supported by this model provider]"
                    )),
                }
            }
        }
    }
}
