//! Project tasks behind `cargo xtask`: the generated artefacts, the drift check that keeps them
//! current, the full test run, the benchmarks and the chaos run.

pub mod artefacts;
pub mod bench;
pub mod chaos;
pub mod codegen;
pub mod codegen_meta;
pub mod codegen_sdk;
pub mod drift;
pub mod layers;
pub mod test_node;
pub mod test_python;
pub mod test_run;

use std::path::{Path, PathBuf};

/// The repository root (the parent of `xtask/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}
