fn main() {
    if std::env::args_os().nth(1).is_some_and(|a| a == hutch::userns::keeper::ROLE) {
        hutch::userns::keeper::keep();
    }
    hutch::trace::init();
    std::process::exit(hutch::cli::main());
}
