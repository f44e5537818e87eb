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

/// The protocol tables of the three SDKs are generated from `schema/meta.json`; a copy edited by
/// hand (here: the Node layer's request-id prefix of `runtime_start`) is drift, reported with the
/// fix command.
#[test]
fn a_hand_edited_sdk_table_is_drift() {
    use xtask::artefacts::CODEGEN_COMMAND;
    use xtask::codegen_meta::{NODE_META_PATH, PYTHON_META_PATH, RUST_META_PATH};

    let artefacts = artefacts::all().unwrap_or_else(|e| panic!("{e}"));
    for path in [RUST_META_PATH, NODE_META_PATH, PYTHON_META_PATH] {
        assert!(
            artefacts.iter().any(|artefact| artefact.path.to_str() == Some(path)),
            "{path} is not checked for drift"
        );
    }
    let checked_in = tempfile::tempdir().expect("temp dir");
    drift::write(checked_in.path(), &artefacts).expect("write");
    let table = checked_in.path().join(NODE_META_PATH);
    let text = std::fs::read_to_string(&table).expect("read");
    let edited = text.replace("requestIdPrefix: \"runtime-start\"", "requestIdPrefix: \"rs\"");
    assert_ne!(text, edited, "the table lists runtime_start's prefix");
    std::fs::write(&table, edited).expect("edit");

    let report = drift::check(checked_in.path(), &artefacts).expect_err("drift must be reported");
    assert!(
        report.contains(&format!("`{NODE_META_PATH}` is out of date"))
            && report.contains(&format!("run `{CODEGEN_COMMAND}` and commit the result")),
        "{report}"
    );
}
