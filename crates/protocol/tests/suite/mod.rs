mod parsing;
#[cfg(feature = "compat")]
mod schema_history;
mod table;
