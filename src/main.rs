fn main() {
    std::process::exit(hutch::cli::main());
}
