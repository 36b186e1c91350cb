//! The `gradc` binary: everything is in `gradc::cli`.

fn main() -> std::process::ExitCode {
    gradc::cli::main()
}
