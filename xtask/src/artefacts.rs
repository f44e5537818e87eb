//! Every generated file the repository checks in, with the command that regenerates it.

use std::path::PathBuf;

use crate::{codegen, codegen_py, codegen_ts};

/// One generated, checked-in file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artefact {
    /// Path relative to the repository root.
    pub path: PathBuf,
    /// What the file must contain.
    pub contents: String,
    /// The command that writes it.
    pub command: &'static str,
}

/// The command that regenerates `schema/`.
pub const SCHEMA_COMMAND: &str = "cargo xtask schema";
/// The command that regenerates every generated file (schema and generated types).
pub const CODEGEN_COMMAND: &str = "cargo xtask codegen";

/// The files under `schema/`, generated from the protocol crate.
pub fn schema() -> Vec<Artefact> {
    letta_app_server_protocol::schema::files()
        .into_iter()
        .map(|(name, contents)| Artefact {
            path: PathBuf::from("schema").join(name),
            contents,
            command: SCHEMA_COMMAND,
        })
        .collect()
}

/// Every generated file: the schema and the code generated from it (Rust and Python types).
pub fn all() -> Result<Vec<Artefact>, String> {
    let bundle = letta_app_server_protocol::schema::bundle();
    let mut artefacts = schema();
    artefacts.push(Artefact {
        path: PathBuf::from(codegen::RUST_TYPES_PATH),
        contents: codegen::rust_types(&bundle)?,
        command: CODEGEN_COMMAND,
    });
    artefacts.push(Artefact {
        path: PathBuf::from(codegen_py::PYTHON_TYPES_PATH),
        contents: codegen_py::python_types(&bundle)?,
        command: CODEGEN_COMMAND,
    });
    artefacts.push(Artefact {
        path: PathBuf::from(codegen_ts::TS_TYPES_PATH),
        contents: codegen_ts::typescript_types(&bundle)?,
        command: CODEGEN_COMMAND,
    });
    Ok(artefacts)
}
