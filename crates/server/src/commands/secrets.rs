//! The secrets group (docs/protocol.md §4.13): `secret_list` and `secret_apply`, an agent's
//! secrets in the server's private file (see [`crate::secrets`]).

use letta_app_server_protocol::{Secret, SecretApply, SecretApplyResponse, SecretList, SecretListResponse};

use crate::engine::Engine;
use crate::engine::catalog::stored_agent;

/// `secret_list`: the agent's secrets, values in plain text, sorted by name.
pub(super) async fn secret_list(engine: &Engine, list: SecretList) -> SecretListResponse {
    let listed = match stored_agent(engine, &list.agent_id).await {
        Ok(_) => engine.secrets.of(&list.agent_id),
        Err(error) => Err(error),
    };
    let (secrets, error) = match listed {
        Ok(secrets) => (
            secrets.into_iter().map(|(key, value)| Secret { key, value }).collect(),
            None,
        ),
        Err(error) => (Vec::new(), Some(error)),
    };
    SecretListResponse {
        request_id: list.request_id,
        success: error.is_none(),
        secrets,
        error,
    }
}

/// `secret_apply`: sets then unsets (so unset wins), names upper-cased; answers with the
/// agent's secret names afterwards.
pub(super) async fn secret_apply(engine: &Engine, apply: SecretApply) -> SecretApplyResponse {
    let applied = match stored_agent(engine, &apply.agent_id).await {
        Ok(_) => engine.secrets.apply(&apply.agent_id, apply.set, apply.unset).await,
        Err(error) => Err(error),
    };
    let (names, error) = match applied {
        Ok(names) => (names, None),
        Err(error) => (Vec::new(), Some(error)),
    };
    SecretApplyResponse {
        request_id: apply.request_id,
        success: error.is_none(),
        names,
        error,
    }
}
