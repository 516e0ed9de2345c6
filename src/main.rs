//! The `footage` command-line tool: see `footage --help`.

fn main() {
    std::process::exit(footage::cli::main());
}
