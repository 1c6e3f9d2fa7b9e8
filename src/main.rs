//! The `thoth-rs` binary; all logic lives in the library.

fn main() -> std::process::ExitCode {
    thoth_rs::cli::main()
}
