//! The `lakeftpd` binary: everything is in the library; see `cli`.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    lakeftpd::cli::main()
}
