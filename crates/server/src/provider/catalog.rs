//! The model lists of the providers, asked for all at once with a timeout each and kept for a
//! while, so that a model picker opens fast and a provider that is down or hangs never holds it
//! up for longer than the timeout.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::future::join_all;
use tokio::time::Instant;

use super::kinds::Kind;
use super::openai::OpenAiCompatible;

/// Where an OpenAI-compatible provider is reached.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct Endpoint {
    pub(super) base_url: String,
    pub(super) api_key: Option<String>,
}

/// A provider's model list (or why there is none), as asked for.
struct Cached {
    /// When it was asked for.
    at: Instant,
    /// The endpoint that was asked.
    endpoint: Endpoint,
    /// [`Catalog::generation`] when it was asked.
    generation: u64,
    models: Result<Vec<String>, String>,
}

/// The model lists, asked for with `timeout` and reused for `ttl`.
pub(super) struct Catalog {
    timeout: Duration,
    ttl: Duration,
    /// Held while lists are asked for, so that concurrent callers wait for one lookup and then
    /// share its result.
    cache: tokio::sync::Mutex<HashMap<Kind, Cached>>,
    /// Bumped by [`Catalog::clear`]: lists asked for before are stale.
    generation: AtomicU64,
}

impl Catalog {
    pub(super) fn new(timeout: Duration, ttl: Duration) -> Self {
        Self {
            timeout,
            ttl,
            cache: tokio::sync::Mutex::default(),
            generation: AtomicU64::new(0),
        }
    }

    /// Forgets every list (after the connections changed).
    pub(super) fn clear(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// The model list of each target, in order: the cached one while it is fresh and was asked of
    /// the same endpoint, else asked for now (all targets at once). With `force`, only a list
    /// asked for after this call is fresh: callers that force at the same time share one lookup.
    pub(super) async fn list(
        &self,
        targets: Vec<(Kind, Endpoint, Arc<OpenAiCompatible>)>,
        force: bool,
    ) -> Vec<(Kind, Result<Vec<String>, String>)> {
        let called = Instant::now();
        let mut cache = self.cache.lock().await;
        let generation = self.generation.load(Ordering::SeqCst);
        let fresh = |kind: &Kind, endpoint: &Endpoint| {
            cache.get(kind).is_some_and(|cached| {
                cached.generation == generation
                    && cached.endpoint == *endpoint
                    && cached.at.elapsed() < self.ttl
                    && (!force || cached.at >= called)
            })
        };
        let stale: Vec<_> = targets
            .iter()
            .filter(|(kind, endpoint, _)| !fresh(kind, endpoint))
            .collect();
        let at = Instant::now();
        let lists = join_all(stale.iter().map(|(_, _, client)| client.list_models(self.timeout))).await;
        for ((kind, endpoint, _), models) in stale.into_iter().zip(lists) {
            let cached = Cached {
                at,
                endpoint: endpoint.clone(),
                generation,
                models,
            };
            cache.insert(*kind, cached);
        }
        targets
            .into_iter()
            .filter_map(|(kind, _, _)| cache.get(&kind).map(|cached| (kind, cached.models.clone())))
            .collect()
    }
}
