//! berth: the overview of every tool, grouped as `docker --help` groups its
//! commands, and one entry point for people who think in one command:
//! `berth TOOL ARGS...` (or `berth DOCKER-COMMAND ARGS...`, e.g. `berth run`,
//! `berth image inspect`) runs the tool, found beside this binary first,
//! then on PATH, in this process, so its exit code is ours.

use berth::Exit;
use berth::tools;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("-h" | "--help" | "help") => {
            print!("{}", help());
            ExitCode::SUCCESS
        }
        Some("-v" | "--version" | "version") => {
            println!("berth {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some(_) => run(&args),
    }
}

fn help() -> String {
    format!(
        "Usage:  berth TOOL [ARGS...]\n        berth DOCKER-COMMAND [ARGS...]   (berth run, berth image inspect, ...)\n\n\
         Docker's image and container workflow as small tools, without a daemon\n{}\n\
         Every tool also runs by its own name. Run 'TOOL --help' for more information on a tool.\n",
        tools::overview()
    )
}

/// Replaces this process with the tool; returns only on failure.
fn run(args: &[String]) -> ExitCode {
    let (tool, taken) = match tools::find(&args[0]) {
        Some(tool) => (tool, 1),
        None => match tools::by_docker_words(args) {
            Some(found) => found,
            None => {
                eprintln!(
                    "berth: unknown command: berth {} (run 'berth --help' for the list)",
                    args[0]
                );
                return ExitCode::from(Exit::Usage as u8);
            }
        },
    };
    let error = Command::new(program(tool.name))
        .arg0(tool.name)
        .args(&args[taken..])
        .exec();
    let code = if error.kind() == std::io::ErrorKind::NotFound {
        Exit::CommandNotFound
    } else {
        Exit::CannotInvoke
    };
    eprintln!("berth: {}: {error}", tool.name);
    ExitCode::from(code as u8)
}

/// The tool beside this binary (an install, a target dir), else its bare
/// name for the PATH search.
fn program(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|me| me.parent().map(|dir| dir.join(name)))
        .filter(|beside| beside.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}
