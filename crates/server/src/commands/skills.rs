//! The skills group (docs/protocol.md §4.5): `skill_enable` and `skill_disable` link and unlink
//! skill directories in the server's skills directory (see [`crate::skills`]); each change is
//! answered, then announced to every client with `skills_updated`.

use letta_app_server_protocol::{SkillDisable, SkillDisableResponse, SkillEnable, SkillEnableResponse, SkillsUpdated};

use super::Caller;

/// `skill_enable`: links the directory; answers its name, the directory and the link.
pub(super) async fn enable(caller: &dyn Caller, enable: SkillEnable) {
    let skills = caller.engine().skills.clone();
    let path = enable.skill_path.clone();
    let enabled = tokio::task::spawn_blocking(move || skills.enable(&path))
        .await
        .unwrap_or_else(|error| Err(error.to_string()));
    let response = match enabled {
        Ok((name, link)) => SkillEnableResponse {
            request_id: enable.request_id,
            success: true,
            skill_name: Some(name.clone()),
            name: Some(name),
            skill_path: Some(enable.skill_path),
            link_path: Some(link.display().to_string()),
            error: None,
        },
        Err(error) => SkillEnableResponse {
            request_id: enable.request_id,
            error: Some(error),
            ..Default::default()
        },
    };
    answer(caller, response.success, response);
}

/// `skill_disable`: removes the link `name`.
pub(super) async fn disable(caller: &dyn Caller, disable: SkillDisable) {
    let skills = caller.engine().skills.clone();
    let name = disable.name.clone();
    let disabled = tokio::task::spawn_blocking(move || skills.disable(&name))
        .await
        .unwrap_or_else(|error| Err(error.to_string()));
    let response = match disabled {
        Ok(()) => SkillDisableResponse {
            request_id: disable.request_id,
            success: true,
            skill_name: Some(disable.name.clone()),
            name: Some(disable.name),
            ..Default::default()
        },
        Err(error) => SkillDisableResponse {
            request_id: disable.request_id,
            error: Some(error),
            ..Default::default()
        },
    };
    answer(caller, response.success, response);
}

/// Sends the answer, then, after a change, `skills_updated` to every client.
fn answer(caller: &dyn Caller, changed: bool, response: impl Into<letta_app_server_protocol::ServerFrame>) {
    caller.send_frame(response.into());
    if changed {
        let update = SkillsUpdated {
            timestamp: crate::clock::now_millis(),
        };
        caller.engine().audience.notify_everyone(update.into());
    }
}
