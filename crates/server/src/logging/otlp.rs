//! OTLP export of the log spans (`--otlp-endpoint`, the `otlp` feature): every `connection` and
//! `turn` span, with its fields as attributes and its events, is sent to an OpenTelemetry
//! collector over OTLP/HTTP (protobuf), in batches, from a thread of the exporter's own.
//!
//! The exporter's thread is not on the server's runtime, but the HTTP client (hyper, as the
//! model providers') needs one: each export is sent as a task on the server's runtime and the
//! exporter's thread waits for that task ([`OnRuntime`]).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tokio::runtime::Handle;

/// How long one export may take, response included.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest collector response read.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// The exporter of `endpoint`'s traces (`<endpoint>/v1/traces`, unless the URL names a path),
/// sending from the runtime of `runtime`.
pub(super) fn provider(endpoint: &str, runtime: Handle) -> Result<SdkTracerProvider, String> {
    let endpoint = endpoint.trim_end_matches('/');
    let url = match endpoint.split_once("://") {
        Some((_, rest)) if rest.contains('/') => endpoint.to_owned(),
        Some(_) => format!("{endpoint}/v1/traces"),
        None => {
            return Err(format!(
                "--otlp-endpoint must be an http:// or https:// URL (got {endpoint})"
            ));
        }
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url)
        .with_timeout(EXPORT_TIMEOUT)
        .with_http_client(OnRuntime::new(runtime))
        .build()
        .map_err(|error| format!("invalid --otlp-endpoint: {error}"))?;
    let resource = Resource::builder().with_service_name(env!("CARGO_PKG_NAME")).build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// The tracing layer sending spans to `provider`'s exporter.
pub(super) fn layer<S>(provider: &SdkTracerProvider) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(env!("CARGO_PKG_NAME")))
        // Busy and idle times need the clock at each step of a span: not worth it per delta.
        .with_tracked_inactivity(false)
}

/// An HTTP client whose requests run on a Tokio runtime, whatever thread asks.
#[derive(Debug)]
struct OnRuntime {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    runtime: Handle,
}

impl OnRuntime {
    fn new(runtime: Handle) -> Self {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .build();
        Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            runtime,
        }
    }
}

#[async_trait::async_trait]
impl HttpClient for OnRuntime {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let sent = self.runtime.spawn(async move {
            let (parts, body) = request.into_parts();
            let request = Request::from_parts(parts, Full::new(body));
            let response = tokio::time::timeout(EXPORT_TIMEOUT, client.request(request)).await??;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_RESPONSE_BYTES).collect().await?.to_bytes();
            Ok::<_, HttpError>(Response::from_parts(parts, body))
        });
        sent.await?
    }
}
