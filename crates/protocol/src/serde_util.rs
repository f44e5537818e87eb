//! Small serde/schemars helpers for the three kinds of optional field on the wire.
//!
//! * *optional* — absent or a value: `Option<T>` with `default` and `skip_serializing_if`.
//! * *always present, may be null* — `Option<T>` marked
//!   `#[schemars(required, schema_with = "nullable::<T>")]` and serialised as `null` when `None`.
//! * *absent, null or a value* where null means something else than absent — `Option<Option<T>>`
//!   with [`double_option`].

use schemars::{JsonSchema, Schema, SchemaGenerator};

/// Schema of a field that is always present but may be `null`.
pub(crate) fn nullable<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<Option<T>>()
}

/// Deserialises an always-present field that may be `null` (`#[serde(deserialize_with =
/// "present")]`): unlike a plain `Option`, an absent field is an error.
pub(crate) fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(deserializer)
}

/// Deserialises `Option<Option<T>>` so that an explicit `null` becomes `Some(None)` and an
/// absent field (with `#[serde(default)]`) stays `None`.
pub(crate) mod double_option {
    use serde::{Deserialize, Deserializer};

    pub(crate) fn deserialize<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        Option::<T>::deserialize(deserializer).map(Some)
    }
}
