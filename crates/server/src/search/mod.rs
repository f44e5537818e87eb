//! Searching a directory tree, shared by the `Grep` and `Glob` tools and by the
//! `search_files` and `grep_in_files` commands:
//!
//! * [`walk`] — walking a tree as ripgrep does (honouring `.gitignore`) and `glob` filters;
//! * [`grep`] — content search with ripgrep's libraries (`grep-regex`, `grep-searcher`);
//! * [`index`] — the fuzzy file index of `search_files` (nucleo) and its bounded cache.

pub mod grep;
pub mod index;
pub mod walk;
