//! The `embedb` binary: the command line lives in the library (`embedb::cli`), which the Python
//! package's `embedb` command runs too.

fn main() {
    std::process::exit(embedb::cli::run(std::env::args_os()));
}
