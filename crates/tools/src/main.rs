//! `letta-app-server-tools`: schema export, transcript validation, schema diff and the
//! conformance kit, for people who check compatibility with the App Server protocol.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use letta_app_server_protocol::compat::{Bundle, Direction, Validator, transcript};
use letta_app_server_tools::{export, validate};

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
        /// Print the invalid frames only, without the summary.
        #[arg(long, short)]
        quiet: bool,
    },
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
            quiet,
        } => validate_files(&files, direction, schema.as_deref(), quiet),
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
    quiet: bool,
) -> Result<ExitCode, String> {
    let validator = match schema {
        Some(path) => Validator::new(&Bundle::from_json(&read(path)?).map_err(|e| format!("{}: {e}", path.display()))?)
            .map_err(|e| format!("{}: {e}", path.display()))?,
        None => Validator::current(),
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
