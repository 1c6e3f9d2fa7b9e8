//! The command-line front end: parses arguments once, resolves settings,
//! dispatches to a command and maps every outcome to an exit code.
//!
//! Exit codes: 0 success, 1 no resolution or a failed check, 2 bad input or
//! usage. Machine output (JSON, locks on `-o -`) goes to stdout; everything
//! meant for people goes to stderr.

mod advise;
pub mod args;
mod config;
mod image;
mod knowledge;
mod monkey;
mod prescriptions;
mod report;
mod session;
mod settings;
pub mod snapshot;
mod stack;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use args::{Cli, ColorChoice, Command, ImageCommand, PrescriptionsCommand};

use crate::input::InputError;

/// Why a command did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A user input file or value is invalid (exit 2).
    #[error("{0}")]
    Input(#[from] InputError),
    /// A flag combination or value is invalid (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The command ran but failed: no resolution, failed check (exit 1).
    #[error("{0}")]
    Failure(String),
    /// Writing output failed (exit 3): disk full, permission denied, a
    /// stream closed with an error.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A file the run writes could not be written, or one it reads could
    /// not be read at the system level (exit 3); what the user had there is
    /// left as it was.
    #[error("{0}")]
    Write(String),
    /// A snapshot or knowledge base is damaged or not one (exit 2, like
    /// any other bad input).
    #[error("{0}")]
    Damaged(String),
}

impl From<crate::kb::KbError> for CliError {
    fn from(e: crate::kb::KbError) -> Self {
        let message = e.to_string();
        Self::from_kb(&e, message)
    }
}

/// A JSON document as the commands print and write it: pretty, with its
/// keys sorted.
pub(crate) fn json_text(value: &impl serde::Serialize) -> Result<String, CliError> {
    serde_json::to_value(value)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .map_err(|e| CliError::Failure(e.to_string()))
}

impl CliError {
    /// The error for a knowledge-base failure, with `message` (which may
    /// add context to `e`'s own text): damaged data is bad input (2), a
    /// file the system could not read or write is 3, and an index that
    /// could not be reached means the run failed (1).
    pub fn from_kb(e: &crate::kb::KbError, message: String) -> Self {
        use crate::kb::KbError;
        use rusqlite::ErrorCode;
        match e {
            KbError::Schema { .. } => Self::Damaged(message),
            KbError::Sqlite { source, .. } => match source.sqlite_error_code() {
                Some(
                    ErrorCode::SystemIoFailure
                    | ErrorCode::CannotOpen
                    | ErrorCode::DiskFull
                    | ErrorCode::PermissionDenied
                    | ErrorCode::ReadOnly,
                ) => Self::Write(message),
                _ => Self::Damaged(message),
            },
            KbError::Io { .. } => Self::Write(message),
            KbError::Network { .. } => Self::Failure(message),
        }
    }

    /// The error for a failed advise-like run, with `message` (the error's
    /// text plus any hint).
    pub fn from_advise(e: &crate::advise::AdviseError, message: String) -> Self {
        use crate::advise::AdviseError;
        match e {
            AdviseError::Target(m) => Self::Usage(m.clone()),
            AdviseError::Resolve(crate::resolve::ResolveError::Kb(k)) => Self::from_kb(k, message),
            AdviseError::Resolve(_) => Self::Failure(message),
        }
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Failure(_) => 1,
            Self::Io(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
            Self::Io(_) | Self::Write(_) => 3,
            Self::Input(_) | Self::Usage(_) | Self::Damaged(_) => 2,
        }
    }
}

/// Output channels shared by commands.
pub struct Printer {
    /// Suppress human output.
    pub quiet: bool,
    /// Use ANSI colours on stderr.
    pub color: bool,
}

impl Printer {
    /// Write a line for people (stderr); errors writing it are ignored.
    pub fn info(&self, line: impl AsRef<str>) {
        if !self.quiet {
            let _ = writeln!(std::io::stderr().lock(), "{}", line.as_ref());
        }
    }

    /// Write a warning for people (stderr), even when quiet is off.
    pub fn warn(&self, line: impl AsRef<str>) {
        if !self.quiet {
            let prefix = if self.color {
                "\x1b[33mwarning\x1b[0m"
            } else {
                "warning"
            };
            let _ = writeln!(std::io::stderr().lock(), "{prefix}: {}", line.as_ref());
        }
    }

    /// Write machine output to stdout (broken pipes surface as `Io` errors).
    pub fn stdout(&self, text: &str) -> Result<(), CliError> {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        if !text.ends_with('\n') {
            out.write_all(b"\n")?;
        }
        out.flush()?;
        Ok(())
    }
}

fn init_tracing(cli: &Cli, color: bool) {
    let default = if cli.quiet {
        "error"
    } else {
        match cli.verbose {
            0 => "warn",
            1 => "debug",
            _ => "trace",
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("THOTH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color)
        .with_target(false)
        .without_time()
        .try_init();
}

/// Parse the process arguments and run; returns the exit code.
pub fn main() -> ExitCode {
    let cli = match <Cli as clap::Parser>::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() { 2 } else { 0 };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    let color = match cli.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
        }
    };
    init_tracing(&cli, color);
    let printer = Printer {
        quiet: cli.quiet,
        color,
    };
    match run(cli, &printer) {
        Ok(code) => code,
        Err(err) => {
            let code = err.exit_code();
            if code != 0 {
                let prefix = if color {
                    "\x1b[31merror\x1b[0m"
                } else {
                    "error"
                };
                let _ = writeln!(std::io::stderr().lock(), "{prefix}: {err}");
            }
            ExitCode::from(code)
        }
    }
}

fn run(cli: Cli, printer: &Printer) -> Result<ExitCode, CliError> {
    let dir = match &cli.directory {
        Some(dir) => {
            if !dir.is_dir() {
                return Err(CliError::Usage(format!(
                    "-C {}: not a directory",
                    dir.display()
                )));
            }
            dir.clone()
        }
        None => PathBuf::from("."),
    };
    match cli.command {
        Command::Advise(args) => {
            let settings = settings::advise_settings(&dir, &args.resolve, &args.lock)?;
            advise::run(&settings, printer)
        }
        Command::Config(args) => config::run(&dir, &args, printer),
        Command::Tree(args) => stack::tree(&dir, &args, printer),
        Command::Why(args) => stack::why(&dir, &args, printer),
        Command::DependencyMonkey(args) => monkey::dependency_monkey(&dir, &args, printer),
        Command::ProvenanceCheck(args) => monkey::provenance_check(&dir, &args, printer),
        Command::Prescriptions(PrescriptionsCommand::Check { dirs, json }) => {
            prescriptions::check(&dir, &dirs, json, printer)
        }
        Command::Snapshot(command) => snapshot::run(&dir, command, printer),
        Command::Image(ImageCommand::Inspect { path, json, save }) => {
            image::inspect(&dir, &path, json, save.as_deref(), printer).map(|()| ExitCode::SUCCESS)
        }
    }
}
