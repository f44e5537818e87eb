//! Every generated file the repository checks in, with the command that regenerates it.

use std::path::PathBuf;

use crate::{codegen, codegen_meta, codegen_sdk};
use letta_app_server_tools::codegen::model::Model;
use letta_app_server_tools::codegen::{python as codegen_py, typescript as codegen_ts};

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

/// Every generated file: the schema and the code generated from it (the Rust, TypeScript and
/// Python frame types from `frames.schema.json`; the Rust, Node and Python protocol tables from
/// `meta.json`; the Node and Python SDKs' methods of each command from both).
pub fn all() -> Result<Vec<Artefact>, String> {
    let bundle = letta_app_server_protocol::schema::bundle();
    let meta = letta_app_server_protocol::schema::meta();
    // The TypeScript and Python types come from one reading of the bundle.
    let model = Model::read(&bundle)?;
    let names = codegen::frame_names(&bundle)?;
    let mut artefacts = schema();
    for (path, contents) in [
        (codegen_meta::RUST_META_PATH, codegen_meta::rust_meta(&meta, &names)?),
        (codegen_meta::NODE_META_PATH, codegen_meta::node_meta(&meta)?),
        (codegen_meta::PYTHON_META_PATH, codegen_meta::python_meta(&meta)?),
        (
            codegen_sdk::NODE_COMMANDS_PATH,
            codegen_sdk::node_commands(&meta, &names, &model)?,
        ),
        (
            codegen_sdk::PYTHON_COMMANDS_PATH,
            codegen_sdk::python_commands(&meta, &names, &model)?,
        ),
    ] {
        artefacts.push(Artefact {
            path: PathBuf::from(path),
            contents,
            command: CODEGEN_COMMAND,
        });
    }
    artefacts.push(Artefact {
        path: PathBuf::from(codegen::RUST_TYPES_PATH),
        contents: codegen::rust_types(&bundle)?,
        command: CODEGEN_COMMAND,
    });
    artefacts.push(Artefact {
        path: PathBuf::from(codegen::NAMED_FRAMES_PATH),
        contents: codegen::named_frames(&bundle)?,
        command: CODEGEN_COMMAND,
    });
    artefacts.push(Artefact {
        path: PathBuf::from(codegen_py::PYTHON_TYPES_PATH),
        contents: codegen_py::python_types(&model)?,
        command: CODEGEN_COMMAND,
    });
    artefacts.push(Artefact {
        path: PathBuf::from(codegen_ts::TS_TYPES_PATH),
        contents: codegen_ts::typescript_types(&model)?,
        command: CODEGEN_COMMAND,
    });
    Ok(artefacts)
}
