//! The `portcullis` command; see `portcullis --help`.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    portcullis_mio::cli::main()
}
