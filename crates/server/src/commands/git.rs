//! The git group (docs/protocol.md §4.12): `search_branches` and `checkout_branch`, in the
//! repository at `cwd` (relative to the boot working directory; the boot working directory when
//! absent).
//!
//! Both run the `git` command line, as real Letta does. The server's gix (0.90, used for MemFS)
//! can list and create references, but has no switch that updates an existing worktree the way
//! `git switch` does (carrying local changes over, refusing to overwrite conflicting ones), and
//! git2 would add libgit2's C build for two commands; the command line also sees exactly the
//! configuration, hooks and worktrees the user's own `git` sees, and its refusals are the texts
//! users know.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use letta_app_server_protocol::{
    CheckoutBranch, CheckoutBranchResponse, GitBranchInfo, SearchBranches, SearchBranchesResponse,
};

use super::Caller;

/// Branches `search_branches` returns when the request names no `max_results` (Letta Code's).
const DEFAULT_MAX_RESULTS: u64 = 20;

/// How long one `git` command may take; past it, it is killed and the command fails.
const GIT_TIMEOUT: Duration = Duration::from_secs(30);

/// `search_branches`: the local branches, then the remote-tracking ones (without the remotes'
/// `HEAD`), each in name order, whose names contain `query` (ignoring case), at most
/// `max_results`.
pub(super) async fn search_branches(caller: &Arc<dyn Caller>, search: SearchBranches) {
    let directory = directory(caller, search.cwd.as_deref());
    let listed = git(
        &directory,
        &[
            "for-each-ref",
            "--format=%(HEAD)%00%(refname)",
            "refs/heads",
            "refs/remotes",
        ],
    )
    .await;
    let query = search.query.to_lowercase();
    let limit = usize::try_from(search.max_results.unwrap_or(DEFAULT_MAX_RESULTS)).unwrap_or(usize::MAX);
    let answer = match listed {
        Ok(listing) => SearchBranchesResponse {
            request_id: search.request_id,
            success: true,
            branches: listing
                .lines()
                .filter_map(branch)
                .filter(|found| found.name.to_lowercase().contains(&query))
                .take(limit)
                .collect(),
            error: None,
        },
        Err(error) => SearchBranchesResponse {
            request_id: search.request_id,
            success: false,
            branches: Vec::new(),
            error: Some(error),
        },
    };
    caller.send(answer);
}

/// One line of the `for-each-ref` listing as a branch; `None` for a remote's `HEAD`.
fn branch(line: &str) -> Option<GitBranchInfo> {
    let (head, refname) = line.split_once('\0')?;
    let (name, is_remote) = match refname.strip_prefix("refs/heads/") {
        Some(local) => (local, false),
        None => (refname.strip_prefix("refs/remotes/")?, true),
    };
    if is_remote && name.ends_with("/HEAD") {
        return None;
    }
    Some(GitBranchInfo {
        name: name.to_owned(),
        is_current: head == "*",
        is_remote,
    })
}

/// `checkout_branch`: switches to `branch` (`git switch`), creating it from the current commit
/// with `create: true`. A remote-tracking branch (`origin/feature`) is switched to as a new
/// local branch tracking it (`feature`), or as the local `feature` when it exists; a local name that only a remote has is created the same
/// way, as `git switch` does. Answers the branch now checked out, or git's refusal.
pub(super) async fn checkout_branch(caller: &Arc<dyn Caller>, checkout: CheckoutBranch) {
    let directory = directory(caller, checkout.cwd.as_deref());
    let result = switch(&directory, &checkout.branch, checkout.create == Some(true)).await;
    let answer = match result {
        Ok(branch) => CheckoutBranchResponse {
            request_id: checkout.request_id,
            success: true,
            branch,
            error: None,
        },
        Err(error) => CheckoutBranchResponse {
            request_id: checkout.request_id,
            success: false,
            branch: checkout.branch,
            error: Some(error),
        },
    };
    caller.send(answer);
}

async fn switch(directory: &Path, branch: &str, create: bool) -> Result<String, String> {
    // A name git would read as an option, or that is no branch name at all.
    if branch.starts_with('-') || git(directory, &["check-ref-format", "--branch", branch]).await.is_err() {
        return Err(format!("fatal: '{branch}' is not a valid branch name"));
    }
    let remote = format!("refs/remotes/{branch}");
    if create {
        git(directory, &["switch", "--create", branch]).await?;
    } else if git(directory, &["show-ref", "--verify", "--quiet", &remote])
        .await
        .is_ok()
    {
        // `origin/feature`: the local `feature`, made to track it unless it exists.
        let local = branch.split_once('/').map_or(branch, |(_, local)| local);
        let existing = format!("refs/heads/{local}");
        if git(directory, &["show-ref", "--verify", "--quiet", &existing])
            .await
            .is_ok()
        {
            git(directory, &["switch", local]).await?;
        } else {
            git(directory, &["switch", "--track", branch]).await?;
        }
    } else {
        git(directory, &["switch", branch]).await?;
    }
    Ok(git(directory, &["symbolic-ref", "--short", "HEAD"])
        .await?
        .trim()
        .to_owned())
}

/// `requested` resolved against the boot working directory.
fn directory(caller: &Arc<dyn Caller>, requested: Option<&str>) -> PathBuf {
    Path::new(&caller.engine().settings.boot_cwd()).join(requested.unwrap_or_default())
}

/// Runs `git args` in `directory` (no prompts, C locale); its standard output, or its error
/// output (trimmed) when it fails.
async fn git(directory: &Path, args: &[&str]) -> Result<String, String> {
    let child = tokio::process::Command::new("git")
        .arg("-C")
        .arg(directory)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| format!("cannot run git: {error}"))?;
    let output = tokio::time::timeout(GIT_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| format!("git {} took longer than {GIT_TIMEOUT:?}", args[0]))?
        .map_err(|error| format!("cannot run git: {error}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    }
}
