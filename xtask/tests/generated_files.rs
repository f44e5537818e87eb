//! The generated files checked into the repository are what the generators produce now.

use xtask::artefacts::{self, Artefact, SCHEMA_COMMAND};
use xtask::{codegen, drift, repo_root};

/// Covers `schema/` and the code generated from it; each stale file names its own fix command.
#[test]
fn checked_in_generated_files_are_current() {
    let artefacts = artefacts::all().unwrap_or_else(|e| panic!("{e}"));
    if let Err(report) = drift::check(&repo_root(), &artefacts) {
        panic!("{report}");
    }
}

#[test]
fn typify_accepts_the_whole_schema() {
    let code = codegen::rust_types(&letta_app_server_protocol::schema::bundle()).unwrap_or_else(|e| panic!("{e}"));
    for union in [
        "pub enum ClientFrame",
        "pub enum ServerFrame",
        "pub enum Delta",
        "pub enum InputPayload",
    ] {
        assert!(code.contains(union), "generated code lacks `{union}`");
    }
    // The generated module is compiled as `letta_app_server_client::types` by every test run.
}

/// What a developer sees after changing a frame field in Rust without regenerating: the
/// generated schema differs from the checked-in one, and the check names the file, shows the
/// diff and gives the command that fixes it.
#[test]
fn drift_is_reported_with_a_diff_and_the_fix_command() {
    let checked_in = tempfile::tempdir().expect("temp dir");
    drift::write(checked_in.path(), &artefacts::schema()).expect("write schema");
    assert_eq!(drift::check(checked_in.path(), &artefacts::schema()), Ok(()));

    // As if `RemoveQueueItem::item_id` had been renamed to `queue_item_id` in Rust.
    let renamed: Vec<Artefact> = artefacts::schema()
        .into_iter()
        .map(|mut artefact| {
            artefact.contents = artefact.contents.replace("\"item_id\"", "\"queue_item_id\"");
            artefact
        })
        .collect();
    let report = drift::check(checked_in.path(), &renamed).expect_err("drift must be reported");
    assert!(
        report.contains("`schema/frames.schema.json` is out of date with the Rust types")
            && report.contains(&format!("run `{SCHEMA_COMMAND}` and commit the result")),
        "{report}"
    );
    let diff_line = |sign: &str, text: &str| {
        report
            .lines()
            .any(|l| l.trim_start().starts_with(sign) && l.contains(text))
    };
    assert!(
        diff_line("-", "\"item_id\"") && diff_line("+", "\"queue_item_id\""),
        "{report}"
    );
    assert!(
        !report.contains("meta.json"),
        "only the changed file is reported:\n{report}"
    );

    // Regenerating fixes it.
    drift::write(checked_in.path(), &renamed).expect("regenerate");
    assert_eq!(drift::check(checked_in.path(), &renamed), Ok(()));

    std::fs::remove_file(checked_in.path().join("schema/meta.json")).expect("remove");
    let report = drift::check(checked_in.path(), &renamed).expect_err("a missing file is drift");
    assert!(report.contains("`schema/meta.json` cannot be read"), "{report}");
}
