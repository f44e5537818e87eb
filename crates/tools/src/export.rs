//! `schema export`: this version's schema bundle and the types generated from it, as the
//! repository checks them in.

use letta_app_server_protocol::schema;

use crate::codegen::model::Model;
use crate::codegen::{python, typescript};

/// What `schema export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// `frames.schema.json` (the JSON Schema bundle) and `meta.json` (the protocol table).
    Json,
    /// `frames.d.ts`, the TypeScript declarations of every frame.
    Ts,
    /// `frames.py`, the Python types of every frame.
    Python,
    /// All of them.
    All,
}

/// The files of `lang` as `(file name, contents)`, byte-identical to `schema/*.json`,
/// `bindings/node/frames.d.ts` and `bindings/python/python/letta_app_server/frames.py`.
pub fn files(lang: Lang) -> Result<Vec<(&'static str, String)>, String> {
    let mut files = Vec::new();
    if matches!(lang, Lang::Json | Lang::All) {
        files.extend(schema::files());
    }
    if matches!(lang, Lang::Ts | Lang::Python | Lang::All) {
        let model = Model::read(&schema::bundle())?;
        if matches!(lang, Lang::Ts | Lang::All) {
            files.push(("frames.d.ts", typescript::typescript_types(&model)?));
        }
        if matches!(lang, Lang::Python | Lang::All) {
            files.push(("frames.py", python::python_types(&model)?));
        }
    }
    Ok(files)
}
