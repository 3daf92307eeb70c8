//! The settings sources: environment variables, YAML/TOML files, and the program's own values.

pub(crate) mod code;
pub(crate) mod env;
pub(crate) mod file;
