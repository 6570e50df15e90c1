//! How a bench row is timed: both commands in interleaved hyperfine
//! rounds, each figure the median of its runs.

use super::Comparison;
use std::process::Command;

/// The rounds each pair is timed in, and the runs of each command per
/// round. The rounds alternate which command goes first: this machine's
/// speed drifts by a quarter within minutes (a VM's neighbours), and all
/// of one command's runs followed by all of the other's put that drift
/// into the ratio.
const ROUNDS: usize = 5;
const RUNS_PER_ROUND: usize = 5;

/// Times both commands in interleaved rounds; returns the median seconds
/// of each one's runs (the goals are medians: one run delayed by
/// writeback or a timer moves the mean of 20 runs and hardly the median).
pub(super) fn time_pair(comparison: &Comparison) -> Result<(f64, f64), String> {
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for round in 0..ROUNDS {
        if round % 2 == 0 {
            let [a, b] = time_round(comparison, [&comparison.ours, &comparison.theirs])?;
            ours.extend(a);
            theirs.extend(b);
        } else {
            let [a, b] = time_round(comparison, [&comparison.theirs, &comparison.ours])?;
            theirs.extend(a);
            ours.extend(b);
        }
    }
    Ok((median(ours), median(theirs)))
}

/// One round: a warm-up and [`RUNS_PER_ROUND`] timed runs of each command,
/// in one hyperfine run; returns each command's run times in seconds.
fn time_round(comparison: &Comparison, commands: [&String; 2]) -> Result<[Vec<f64>; 2], String> {
    let export = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    let mut command = Command::new("hyperfine");
    command
        .args(["--warmup", "1", "--runs"])
        .arg(RUNS_PER_ROUND.to_string())
        .args(["--style", "none", "--output", "null", "--export-json"])
        .arg(export.path());
    if let Some(prepare) = &comparison.prepare {
        command.args(["--prepare", prepare]);
    }
    command.args(commands);
    let output = command.output().map_err(|e| format!("hyperfine: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "hyperfine failed on {}: {}",
            comparison.name,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(export.path()).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    let times = |i: usize| -> Vec<f64> {
        report["results"][i]["times"]
            .as_array()
            .map(|times| times.iter().filter_map(|t| t.as_f64()).collect())
            .unwrap_or_default()
    };
    Ok([times(0), times(1)])
}

fn median(mut times: Vec<f64>) -> f64 {
    if times.is_empty() {
        return f64::NAN;
    }
    times.sort_by(f64::total_cmp);
    let middle = times.len() / 2;
    if times.len() % 2 == 1 {
        times[middle]
    } else {
        (times[middle - 1] + times[middle]) / 2.0
    }
}
