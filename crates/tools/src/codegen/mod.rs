//! Code generated from the schema bundle: the TypeScript declarations of the Node SDK and the
//! Python types of the Python SDK. Both walk one [`model::Model`] of the bundle.

pub mod model;
pub mod python;
pub mod typescript;
