//! `letta-app-server-tools`: schema export, transcript validation, schema diff and the
//! conformance kit, for people who check compatibility with the App Server protocol.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use letta_app_server_protocol::compat::{Bundle, Direction, Validator, diff, transcript};
use letta_app_server_tools::conformance::{self, DEFAULT_MODEL, Options};
use letta_app_server_tools::{diff as report, export, validate};

/// Exit status for a usage or input error (a file that cannot be read, a bad schema).
const TROUBLE: u8 = 2;

#[derive(Parser)]
#[command(name = "letta-app-server-tools", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The schema of this version.
    Schema {
        #[command(subcommand)]
        command: SchemaCommand,
    },
    /// Checks recorded frames against the schema: every invalid frame with its position, type,
    /// path and reason, then a summary by type. Exits 1 when a frame is invalid.
    Validate {
        /// Transcripts (JSONL, a JSON array, a single frame or a HAR export); `-` is standard
        /// input.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Who sent frames whose transcript does not say (default: the frame type's sender).
        #[arg(long)]
        direction: Option<DirectionArg>,
        /// Check against this schema bundle instead of this version's (the schema alone, without
        /// this version's parser checks).
        #[arg(long, value_name = "FILE")]
        schema: Option<PathBuf>,
        /// Judge as a receiver does: accept server frame types and values of open enums and
        /// unions (`"x-open": true`) that the schema does not list, as a newer server may send.
        #[arg(long)]
        keep_unknown: bool,
        /// Print the invalid frames only, without the summary.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Lists the changes from the OLD schema bundle to the NEW one, each with its path and whom
    /// it breaks (clients written against OLD, servers implementing OLD, both, or neither), then
    /// a count per class. Exits 1 when a change breaks what `--fail-on` selects, 2 on a usage or
    /// input error.
    Diff {
        /// OLD and NEW bundles (`-` is standard input); with `--from-git`, NEW alone, optional
        /// (default: `schema/frames.schema.json` of the working tree, else this version's
        /// bundle).
        #[arg(value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Read OLD from `schema/frames.schema.json` at this revision (`origin/main`, a tag, a
        /// commit) of the git repository containing the current directory.
        #[arg(long, value_name = "REV")]
        from_git: Option<String>,
        /// Which breaking changes make the exit status 1.
        #[arg(long, value_enum, default_value = "any")]
        fail_on: FailOnArg,
        /// Print the changes as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Drives a running App Server through the protocol's lifecycles: one `PASS name`,
    /// `FAIL name: reason` or `SKIP name: reason` line per check, then a summary. Exits 1 when a
    /// check failed, 2 when the server cannot be checked.
    Conformance(ConformanceArgs),
}

#[derive(clap::Args)]
struct ConformanceArgs {
    /// The server's websocket URL (`ws://127.0.0.1:4500/ws`, `wss://…`).
    #[arg(required_unless_present_any = ["serve_model", "list"])]
    url: Option<String>,
    /// Sent as `Authorization: Bearer <TOKEN>` with every websocket upgrade.
    #[arg(long, conflicts_with = "token_file")]
    token: Option<String>,
    /// Read the token from a file (trimmed), so that it does not show in the process list.
    #[arg(long, value_name = "PATH")]
    token_file: Option<PathBuf>,
    /// PEM certificates of CAs to trust for `wss://`, besides the Mozilla roots.
    #[arg(long, value_name = "PATH")]
    ca_cert: Option<PathBuf>,
    /// The model handle agents are created with; it must reach the kit's model server.
    #[arg(long, default_value = DEFAULT_MODEL)]
    model: String,
    /// Run only these checks or groups of checks (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Leave out these checks or groups of checks.
    #[arg(long, value_delimiter = ',')]
    skip: Vec<String>,
    /// Seconds a check waits for a frame.
    #[arg(long, value_name = "SECONDS", default_value_t = conformance::DEFAULT_FRAME_TIMEOUT.as_secs())]
    timeout: u64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Write what each check sent and received to DIR/<check>.jsonl.
    #[arg(long, value_name = "DIR")]
    record: Option<PathBuf>,
    /// Serve the kit's model (OpenAI-compatible, on 127.0.0.1): alone, print its base URL and
    /// serve until interrupted; with a URL, serve it while the checks run.
    #[arg(long)]
    serve_model: bool,
    /// The model server's port (default: a free one).
    #[arg(long, requires = "serve_model")]
    port: Option<u16>,
    /// List the checks and what each covers.
    #[arg(long)]
    list: bool,
}

#[derive(Subcommand)]
enum SchemaCommand {
    /// Writes the schema bundle and the types generated from it, byte-identical to the
    /// repository's checked-in files.
    Export {
        /// The directory to write into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// What to write.
        #[arg(long, value_enum, default_value = "all")]
        lang: LangArg,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum LangArg {
    /// `frames.schema.json` and `meta.json`.
    Json,
    /// `frames.d.ts`.
    Ts,
    /// `frames.py`.
    Python,
    /// All four files.
    All,
}

#[derive(Clone, Copy, ValueEnum)]
enum FailOnArg {
    /// Changes that break clients written against OLD.
    Client,
    /// Changes that break servers implementing OLD.
    Server,
    /// Every breaking change.
    Any,
}

#[derive(Clone, Copy, ValueEnum)]
enum DirectionArg {
    /// Client to server.
    Client,
    /// Server to client.
    Server,
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Schema {
            command: SchemaCommand::Export { out, lang },
        } => export_schema(&out, lang),
        Command::Validate {
            files,
            direction,
            schema,
            keep_unknown,
            quiet,
        } => validate_files(&files, direction, schema.as_deref(), keep_unknown, quiet),
        Command::Diff {
            files,
            from_git,
            fail_on,
            json,
        } => diff_bundles(&files, from_git.as_deref(), fail_on, json),
        Command::Conformance(args) => check_conformance(args),
    };
    result.unwrap_or_else(|message| {
        eprintln!("letta-app-server-tools: {message}");
        ExitCode::from(TROUBLE)
    })
}

fn export_schema(out: &Path, lang: LangArg) -> Result<ExitCode, String> {
    let lang = match lang {
        LangArg::Json => export::Lang::Json,
        LangArg::Ts => export::Lang::Ts,
        LangArg::Python => export::Lang::Python,
        LangArg::All => export::Lang::All,
    };
    std::fs::create_dir_all(out).map_err(|e| format!("creating {}: {e}", out.display()))?;
    for (name, contents) in export::files(lang)? {
        let path = out.join(name);
        std::fs::write(&path, contents).map_err(|e| format!("writing {}: {e}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn validate_files(
    files: &[PathBuf],
    direction: Option<DirectionArg>,
    schema: Option<&Path>,
    keep_unknown: bool,
    quiet: bool,
) -> Result<ExitCode, String> {
    let validator = match schema {
        Some(path) => Validator::new(&Bundle::from_json(&read(path)?).map_err(|e| format!("{}: {e}", path.display()))?)
            .map_err(|e| format!("{}: {e}", path.display()))?,
        None => Validator::current(),
    };
    let validator = if keep_unknown {
        validator.keeping_unknown()
    } else {
        validator
    };
    let direction = direction.map(|direction| match direction {
        DirectionArg::Client => Direction::Client,
        DirectionArg::Server => Direction::Server,
    });
    let mut all = transcript::Report::default();
    for file in files {
        let report = transcript::check(&validator, &transcript::read(&read(file)?), direction);
        print!("{}", validate::findings(&file.display().to_string(), &report));
        all.merge(report);
    }
    if !quiet {
        print!("{}", validate::summary(&all));
    }
    Ok(if all.is_valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn diff_bundles(files: &[PathBuf], from_git: Option<&str>, fail_on: FailOnArg, json: bool) -> Result<ExitCode, String> {
    let ((old_label, old), (new_label, new)) = match (from_git, files) {
        (None, [old, new]) => (bundle_file(old)?, bundle_file(new)?),
        (None, _) => return Err("diff takes two files, OLD and NEW (or --from-git REV [NEW])".to_owned()),
        (Some(rev), [] | [_]) => {
            let repository = report::repository()?;
            let label = format!("{rev}:{}", report::SCHEMA_PATH);
            let old = Bundle::from_json(&report::bundle_at(&repository, rev)?).map_err(|e| format!("{label}: {e}"))?;
            let new = match files
                .first()
                .cloned()
                .or_else(|| report::working_tree_bundle(&repository))
            {
                Some(path) => bundle_file(&path)?,
                None => ("this version's bundle".to_owned(), Bundle::current()),
            };
            ((label, old), new)
        }
        (Some(_), _) => return Err("with --from-git, diff takes at most one file, NEW".to_owned()),
    };
    let changes = diff(&old, &new);
    if json {
        println!("{:#}", report::json(&old_label, &new_label, &changes));
    } else {
        print!("{}", report::report(&old_label, &new_label, &changes));
    }
    let fail_on = match fail_on {
        FailOnArg::Client => report::FailOn::Client,
        FailOnArg::Server => report::FailOn::Server,
        FailOnArg::Any => report::FailOn::Any,
    };
    Ok(if changes.iter().any(|change| fail_on.fails(change)) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// A bundle file (or standard input) and how the report names it.
fn bundle_file(path: &Path) -> Result<(String, Bundle), String> {
    let label = report::file_label(path);
    let bundle = Bundle::from_json(&read(path)?).map_err(|e| format!("{label}: {e}"))?;
    Ok((label, bundle))
}

fn check_conformance(args: ConformanceArgs) -> Result<ExitCode, String> {
    if args.list {
        for (name, what) in conformance::CHECKS {
            println!("{name:34} {what}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("starting the Tokio runtime: {e}"))?;
    runtime.block_on(async {
        let model = match args.serve_model {
            true => {
                let port = args.port.unwrap_or(0);
                let server = conformance::serve_model(port, &args.model)
                    .map_err(|e| format!("serving the model on 127.0.0.1:{port}: {e}"))?;
                Some(server)
            }
            false => None,
        };
        let Some(url) = args.url else {
            let base = model.as_ref().map(|model| model.base_url.as_str()).unwrap_or_default();
            println!("LLAMA_CPP_BASE_URL={base}");
            eprintln!("Serving the model of {} until interrupted", args.model);
            std::future::pending::<()>().await;
            return Ok(ExitCode::SUCCESS);
        };
        if let Some(model) = &model {
            eprintln!("LLAMA_CPP_BASE_URL={}", model.base_url);
        }
        let token = match args.token_file {
            Some(path) => Some(read(&path)?.trim().to_owned()),
            None => args.token,
        };
        let options = Options {
            token,
            ca_pem: args.ca_cert.as_deref().map(read).transpose()?.map(String::into_bytes),
            model: args.model,
            only: args.only,
            skip: args.skip,
            frame_timeout: std::time::Duration::from_secs(args.timeout.max(1)),
            record: args.record,
            ..Options::new(url)
        };
        let report = conformance::run(&options)
            .await
            .map_err(|trouble| trouble.to_string())?;
        if args.json {
            let json = serde_json::to_string_pretty(&report.to_json()).map_err(|e| e.to_string())?;
            println!("{json}");
        } else {
            print!("{}", report.to_text());
        }
        Ok(if report.passed() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}

/// The text of a file, or of standard input for `-`.
fn read(path: &Path) -> Result<String, String> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("reading standard input: {e}"))?;
        return Ok(text);
    }
    std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))
}
