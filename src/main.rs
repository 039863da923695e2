//! The `berth` binary: parses the command line and hands over to [`berth::cli`].

use clap::Parser;

fn main() -> std::process::ExitCode {
    berth::cli::main(berth::cli::Cli::parse())
}
