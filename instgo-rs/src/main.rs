//! `cargo-instrument`: the cargo subcommand, and (when cargo runs it as `RUSTC_WRAPPER`)
//! the rustc wrapper. A thin front over the `instgo` library.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let wrapper = std::env::var_os(instgo::wrapper::env::MODE).is_some()
        && args.first().is_some_and(|a| a != "instrument");
    let result = if wrapper {
        instgo::wrapper::run(args)
    } else {
        // `cargo instrument X` runs us as `cargo-instrument instrument X`.
        if args.first().is_some_and(|a| a == "instrument") {
            args.remove(0);
        }
        instgo::driver::main(instgo::driver::os_args_to_strings(args))
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
