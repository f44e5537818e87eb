//! `Grep` and `Glob`.

use super::*;

/// A small tree: a.rs (oldest), b.py, `sub dir/c.rs` (newest), plus an ignored and a hidden file.
fn search_tree() -> (tempfile::TempDir, PathBuf) {
    let dir = temp();
    let root = dir.path().join("project root");
    write(&root.join("a.rs"), "fn main() {\n    println!(\"Hello\");\n}\n");
    write(&root.join("b.py"), "import os\nprint('hello')\nx = 1\n");
    write(
        &root.join("sub dir/c.rs"),
        "// hello world\nlet x = 1;\nlet y = 2;\n// hello again\n",
    );
    write(&root.join("ignored.rs"), "hello\n");
    write(&root.join(".hidden.rs"), "hello\n");
    write(&root.join(".gitignore"), "ignored.rs\n");
    set_mtime(&root.join("a.rs"), 1);
    set_mtime(&root.join("b.py"), 2);
    set_mtime(&root.join("sub dir/c.rs"), 3);
    (dir, root)
}

fn grep(args: Value) -> Value {
    let mut args = object(args);
    args.entry("pattern").or_insert(json!("hello"));
    Value::Object(args)
}

#[tokio::test]
async fn grep_lists_files_newest_first_and_honours_gitignore() {
    let (_dir, root) = search_tree();
    let result = run("Grep", grep(json!({})), &root).await;
    assert_ok(&result);
    let expected = format!(
        "Found 2 files\n{}\n{}",
        root.join("sub dir/c.rs").display(),
        root.join("b.py").display()
    );
    assert_eq!(result.text, expected);
    let result = run("Grep", grep(json!({"-i": true})), &root).await;
    assert_eq!(
        result.text,
        format!(
            "Found 3 files\n{}\n{}\n{}",
            root.join("sub dir/c.rs").display(),
            root.join("b.py").display(),
            root.join("a.rs").display()
        )
    );
}

#[tokio::test]
async fn grep_content_mode_with_line_numbers_and_context() {
    let (_dir, root) = search_tree();
    let a = root.join("a.rs").display().to_string();
    let result = run(
        "Grep",
        grep(json!({"pattern": "println", "output_mode": "content"})),
        &root,
    )
    .await;
    assert_eq!(result.text, format!("{a}:2:    println!(\"Hello\");"));
    let result = run(
        "Grep",
        grep(json!({"pattern": "println", "output_mode": "content", "-n": false})),
        &root,
    )
    .await;
    assert_eq!(result.text, format!("{a}:    println!(\"Hello\");"));
    let result = run(
        "Grep",
        grep(json!({"pattern": "println", "output_mode": "content", "-C": 1})),
        &root,
    )
    .await;
    assert_eq!(
        result.text,
        format!("{a}-1-fn main() {{\n{a}:2:    println!(\"Hello\");\n{a}-3-}}")
    );
    let result = run(
        "Grep",
        grep(json!({"pattern": "println", "output_mode": "content", "-A": 1})),
        &root,
    )
    .await;
    assert_eq!(result.text, format!("{a}:2:    println!(\"Hello\");\n{a}-3-}}"));
    let c = root.join("sub dir/c.rs").display().to_string();
    let result = run(
        "Grep",
        grep(json!({"output_mode": "content", "path": "sub dir", "context": 0, "-B": 1})),
        &root,
    )
    .await;
    assert_eq!(
        result.text,
        format!("{c}:1:// hello world\n--\n{c}-3-let y = 2;\n{c}:4:// hello again")
    );
}

#[tokio::test]
async fn grep_filters_by_glob_and_type() {
    let (_dir, root) = search_tree();
    let result = run("Grep", grep(json!({"glob": "*.py"})), &root).await;
    assert_eq!(result.text, format!("Found 1 file\n{}", root.join("b.py").display()));
    let result = run("Grep", grep(json!({"type": "rust", "-i": true})), &root).await;
    assert_eq!(
        result.text,
        format!(
            "Found 2 files\n{}\n{}",
            root.join("sub dir/c.rs").display(),
            root.join("a.rs").display()
        )
    );
    // Hidden and ignored files stay out even when a glob selects them.
    let result = run("Grep", grep(json!({"glob": "*.rs"})), &root).await;
    assert_eq!(
        result.text,
        format!("Found 1 file\n{}", root.join("sub dir/c.rs").display())
    );
    let result = run("Grep", grep(json!({"glob": "*.{rs,py} !b.py", "-i": true})), &root).await;
    assert_eq!(
        result.text,
        format!(
            "Found 2 files\n{}\n{}",
            root.join("sub dir/c.rs").display(),
            root.join("a.rs").display()
        )
    );
    let result = run("Grep", grep(json!({"glob": "sub*/*.rs"})), &root).await;
    assert_eq!(
        result.text,
        format!("Found 1 file\n{}", root.join("sub dir/c.rs").display())
    );
    let result = run("Grep", grep(json!({"type": "py"})), &root).await;
    assert_eq!(result.text, format!("Found 1 file\n{}", root.join("b.py").display()));
    assert_error(
        &run("Grep", grep(json!({"type": "nosuchtype"})), &root).await,
        "Unknown file type",
    );
}

#[tokio::test]
async fn grep_count_mode_and_pagination() {
    let (_dir, root) = search_tree();
    let result = run(
        "Grep",
        grep(json!({"output_mode": "count", "path": "sub dir/c.rs"})),
        &root,
    )
    .await;
    assert_ok(&result);
    assert_eq!(
        result.text,
        format!(
            "{}:2\n\nFound 2 matching lines across 1 file.",
            root.join("sub dir/c.rs").display()
        )
    );
    let result = run(
        "Grep",
        grep(json!({"pattern": "=", "output_mode": "content", "head_limit": 2})),
        &root,
    )
    .await;
    let shown: Vec<&str> = result.text.lines().take_while(|line| !line.is_empty()).collect();
    assert_eq!(shown.len(), 2);
    assert!(result.text.contains("Showing lines 1-2 of 3"), "{}", result.text);
    let result = run("Grep", grep(json!({"-i": true, "offset": 1, "head_limit": 1})), &root).await;
    assert!(
        result
            .text
            .starts_with(&format!("Found 3 files\n{}\n", root.join("b.py").display())),
        "{}",
        result.text
    );
}

#[tokio::test]
async fn grep_multiline() {
    let (_dir, root) = search_tree();
    let pattern = r"main\(\) \{\n\s+println";
    let result = run(
        "Grep",
        json!({"pattern": pattern, "multiline": true, "output_mode": "content"}),
        &root,
    )
    .await;
    let a = root.join("a.rs").display().to_string();
    assert_eq!(
        result.text,
        format!("{a}:1:fn main() {{\n{a}:2:    println!(\"Hello\");")
    );
    let result = run("Grep", json!({"pattern": pattern}), &root).await;
    assert_error(&result, "multiline");
}

#[tokio::test]
async fn grep_errors_and_no_matches() {
    let (_dir, root) = search_tree();
    let none = run("Grep", json!({"pattern": "zzz_nothing"}), &root).await;
    assert_ok(&none);
    assert_eq!(none.text, "No matches found");
    assert_error(&run("Grep", json!({"pattern": "("}), &root).await, "Invalid pattern");
    assert_error(
        &run("Grep", grep(json!({"path": "nowhere"})), &root).await,
        "does not exist",
    );
    assert_error(
        &run("Grep", grep(json!({"output_mode": "lines"})), &root).await,
        "Unknown output_mode",
    );
}

// ---------------------------------------------------------------------------------------------
// Glob.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn glob_returns_newest_first() {
    let (_dir, root) = search_tree();
    let result = run("Glob", json!({"pattern": "**/*.rs"}), &root).await;
    assert_ok(&result);
    assert_eq!(
        result.text,
        format!(
            "{}\n{}",
            root.join("sub dir/c.rs").display(),
            root.join("a.rs").display()
        )
    );
    let result = run("Glob", json!({"pattern": "*.rs"}), &root).await;
    assert_eq!(result.text, root.join("a.rs").display().to_string());
    let result = run("Glob", json!({"pattern": "*.rs", "path": "sub dir"}), &root).await;
    assert_eq!(result.text, root.join("sub dir/c.rs").display().to_string());
    let result = run("Glob", json!({"pattern": ".hidden*"}), &root).await;
    assert_eq!(result.text, root.join(".hidden.rs").display().to_string());
    let result = run("Glob", json!({"pattern": "**/*.{py,txt}"}), &root).await;
    assert_eq!(result.text, root.join("b.py").display().to_string());
    let absolute = format!("{}/**/c.*", root.display());
    let result = run("Glob", json!({"pattern": absolute}), Path::new("/")).await;
    assert_eq!(result.text, root.join("sub dir/c.rs").display().to_string());
    let result = run("Glob", json!({"pattern": "./sub dir/c.rs"}), &root).await;
    assert_eq!(result.text, root.join("sub dir/c.rs").display().to_string());
}

#[tokio::test]
async fn glob_caps_results_and_reports_errors() {
    let dir = temp();
    for index in 0..105 {
        let path = dir.path().join(format!("f{index:03}.txt"));
        write(&path, "");
        set_mtime(&path, index);
    }
    let result = run("Glob", json!({"pattern": "*.txt"}), dir.path()).await;
    assert_ok(&result);
    let lines: Vec<&str> = result.text.lines().collect();
    assert_eq!(lines.len(), 101);
    assert_eq!(lines[0], dir.path().join("f104.txt").display().to_string());
    assert_eq!(lines[99], dir.path().join("f005.txt").display().to_string());
    assert!(lines[100].contains("truncated"), "{}", lines[100]);
    let none = run("Glob", json!({"pattern": "*.md"}), dir.path()).await;
    assert_ok(&none);
    assert_eq!(none.text, "No files found");
    assert_error(&run("Glob", json!({"pattern": "[a"}), dir.path()).await, "Invalid glob");
    assert_error(
        &run("Glob", json!({"pattern": "*", "path": "missing"}), dir.path()).await,
        "does not exist",
    );
}
