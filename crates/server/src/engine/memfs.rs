//! Agents' memory repositories (`enable_memfs`, docs/protocol.md §4.2): one git repository per
//! agent under the data directory, made as real Letta's local backend makes it: branch `main`,
//! the agent's identity in the local configuration, and an empty first commit.

use std::path::{Path, PathBuf};

use crate::clock::now_iso;
use crate::engine::context::Context;

/// The author of the first commit, as real Letta names it.
const AUTHOR: &str = "Letta Agent";
/// The message of the first commit, as `git commit -m` writes real Letta's.
const FIRST_COMMIT: &str = "chore: initialize empty local memory\n";

/// Creates the memory repository of `agent_id` if it does not exist yet (idempotent: an
/// existing one keeps its history); returns its directory, or why it cannot be made.
pub async fn enable(context: &Context, agent_id: &str) -> Result<PathBuf, String> {
    if agent_id.is_empty() || matches!(agent_id, "." | "..") || agent_id.contains(['/', '\\', '\0']) {
        return Err(format!("Agent id {agent_id:?} cannot name a memory directory"));
    }
    let agent = context.store.agent(agent_id.to_owned()).await;
    if agent.map_err(|error| error.to_string())?.is_none() {
        return Err(format!("Agent {agent_id} not found"));
    }
    let settings = &context.settings;
    let _one_at_a_time = settings.memfs_creation.lock().await;
    let directory = settings.memory_directory(agent_id);
    let (path, agent) = (directory.clone(), agent_id.to_owned());
    tokio::task::spawn_blocking(move || initialize(&path, &agent))
        .await
        .map_err(|error| error.to_string())??;
    context
        .store
        .save_memory_repository(agent_id.to_owned(), now_iso())
        .await
        .map_err(|error| error.to_string())?;
    settings.memory_repository_created(agent_id);
    Ok(directory)
}

/// Makes `directory` a git repository of `agent_id` with a first commit, keeping whatever it
/// already holds.
fn initialize(directory: &Path, agent_id: &str) -> Result<(), String> {
    let failed = |error: &dyn std::fmt::Display| format!("Could not create the memory repository: {error}");
    std::fs::create_dir_all(directory).map_err(|e| failed(&e))?;
    // Isolated: the user's git configuration (`init.defaultBranch`) does not apply, and Letta's
    // branch is `main`.
    let options = gix::open::Options::isolated();
    let repository = if directory.join(".git").is_dir() {
        gix::open_opts(directory, options).map_err(|e| failed(&e))?
    } else {
        let kind = gix::create::Kind::WithWorktree;
        let created = gix::ThreadSafeRepository::init_opts(directory, kind, gix::create::Options::default(), options);
        created.map_err(|e| failed(&e))?.to_thread_local()
    };
    let email = format!("{agent_id}@letta.com");
    configure(&repository.git_dir().join("config"), agent_id, &email).map_err(|e| failed(&e))?;
    if repository.head_id().is_ok() {
        return Ok(());
    }
    let tree = repository
        .write_object(gix::objs::Tree::empty())
        .map_err(|e| failed(&e))?;
    let signature = gix::actor::Signature {
        name: AUTHOR.into(),
        email: email.into(),
        time: gix::date::Time::now_local_or_utc(),
    };
    let mut time = gix::date::parse::TimeBuf::default();
    let signature = signature.to_ref(&mut time);
    repository
        .commit_as(
            signature,
            signature,
            "HEAD",
            FIRST_COMMIT,
            tree,
            Vec::<gix::ObjectId>::new(),
        )
        .map_err(|e| failed(&e))?;
    Ok(())
}

/// Writes the agent's identity into the repository's local configuration, as real Letta does
/// (and `commit.gpgsign = false` unless set).
fn configure(path: &Path, agent_id: &str, email: &str) -> Result<(), String> {
    let mut config = gix::config::File::from_path_no_includes(path.to_owned(), gix::config::Source::Local)
        .map_err(|error| error.to_string())?;
    let mut values = vec![
        ("letta.agentId", agent_id),
        ("user.email", email),
        ("user.name", AUTHOR),
    ];
    if config.raw_value("commit.gpgsign").is_err() {
        values.push(("commit.gpgsign", "false"));
    }
    for (key, value) in values {
        config.set_raw_value(key, value).map_err(|error| error.to_string())?;
    }
    std::fs::write(path, config.to_bstring()).map_err(|error| error.to_string())
}
