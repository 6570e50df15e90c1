//! Docker's top: `ps` run on the host (`-ef` unless other arguments are
//! given) for the processes in the container's cgroups, its rows kept for
//! those host PIDs only, as Docker's daemon does it.

use super::LifecycleError;
use crate::container::owner::{self, refresh};
use crate::container::{Record, cgroup};
use crate::store::Store;
use std::process::Command;

/// The processes of a container as `ps` shows them: its column titles,
/// and one row per process, the last column holding the rest of the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Top {
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
}

/// Runs `ps ps_args` (`-ef` if none) over the processes of a running
/// container (paused ones too, as Docker's).
pub fn top(store: &Store, record: &Record, ps_args: &[String]) -> Result<Top, LifecycleError> {
    let record = refresh(store, record.clone());
    if !record.state.running || !owner::init_alive(&record.id, record.state.pid) {
        return Err(LifecycleError::Stopped(record.id));
    }
    check_ps_args(ps_args)?;
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        ps_args.to_vec()
    };
    let pids = cgroup::procs(&record.id);
    let quick = pids
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    // `-q PIDS` spares ps reading every process; some options (`f`) refuse
    // it, so ps runs again without it, as Docker's daemon does.
    let output = ps(args.iter().cloned().chain([format!("-q{quick}")]))
        .or_else(|_| ps(args.iter().cloned()))?;
    parse(&output, &pids)
}

fn ps(args: impl Iterator<Item = String>) -> Result<String, LifecycleError> {
    let output = Command::new("ps")
        .args(args)
        .env("LC_ALL", "C")
        .output()
        .map_err(|e| LifecycleError::Ps(format!("ps: {e}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let why = stderr.lines().next().unwrap_or("failed");
        return Err(LifecycleError::Ps(format!("ps: {why}")));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Docker's one check of the arguments: a column may be renamed to a PID
/// title only if it is the PID column (`-o pid=PID`), since the PID column
/// is what the rows are kept by.
fn check_ps_args(args: &[String]) -> Result<(), LifecycleError> {
    for arg in args {
        for column in arg.split(',') {
            if let Some((key, title)) = column.split_once('=')
                && title.trim_start().starts_with("PID")
                && key != "pid"
            {
                return Err(LifecycleError::Ps(format!(
                    "specifying \"{key}={}\" is not allowed",
                    title.trim_start()
                )));
            }
        }
    }
    Ok(())
}

/// `ps`'s output kept for `pids`: the columns split on ASCII whitespace,
/// the last one taking the rest of its line (a command and its arguments).
/// A thread row (`-` in the PID column, as `ps -T` or `-L` print) follows
/// the process it belongs to.
fn parse(output: &str, pids: &[i32]) -> Result<Top, LifecycleError> {
    let mut lines = output.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split_ascii_whitespace()
        .map(str::to_string)
        .collect();
    let Some(pid_column) = titles.iter().position(|t| t == "PID") else {
        return Err(LifecycleError::Ps(
            "Couldn't find PID field in ps output".to_string(),
        ));
    };
    let mut processes = Vec::new();
    let mut keeping = false;
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        let Some(pid) = fields.get(pid_column) else {
            continue;
        };
        keeping = match *pid {
            "-" => keeping,
            pid => pid.parse::<i32>().is_ok_and(|pid| pids.contains(&pid)),
        };
        if keeping {
            let last = titles.len().saturating_sub(1).min(fields.len());
            let mut row: Vec<String> = fields[..last].iter().map(|f| f.to_string()).collect();
            row.push(fields[last..].join(" "));
            processes.push(row);
        }
    }
    Ok(Top { titles, processes })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PS_EF: &str = "\
UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 08:00 ?        00:00:01 /sbin/init splash
root        4242    4240  0 08:01 ?        00:00:00 sleep 1000
root        4250    4242  0 08:01 ?        00:00:00 sh -c echo 'a  b'
";

    #[test]
    fn only_the_container_s_rows_are_kept_with_the_command_whole() {
        let top = parse(PS_EF, &[4242, 4250]).unwrap();
        assert_eq!(
            top.titles,
            ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
        );
        assert_eq!(top.processes.len(), 2);
        assert_eq!(top.processes[0][1], "4242");
        assert_eq!(top.processes[0][7], "sleep 1000");
        assert_eq!(top.processes[1][7], "sh -c echo 'a b'");
    }

    #[test]
    fn threads_follow_their_process_and_a_pid_column_is_required() {
        let threads =
            "  PID   SPID CMD\n   7      7 a\n   -      8 a\n   9      9 b\n   -     10 b\n";
        let top = parse(threads, &[7]).unwrap();
        assert_eq!(top.processes, [["7", "7", "a"], ["-", "8", "a"]]);
        let err = parse("USER COMMAND\nroot sleep\n", &[1]).unwrap_err();
        assert_eq!(err.to_string(), "Couldn't find PID field in ps output");
    }

    #[test]
    fn only_the_pid_column_may_be_titled_pid() {
        check_ps_args(&["-o".into(), "pid=PID,comm".into()]).unwrap();
        let err = check_ps_args(&["-o".into(), "ppid=PID".into()]).unwrap_err();
        assert_eq!(err.to_string(), "specifying \"ppid=PID\" is not allowed");
    }
}
