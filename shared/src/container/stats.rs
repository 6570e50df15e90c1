//! What `docker stats` shows of a container: CPU, memory, network and
//! block I/O and PIDs, read from its cgroup v1 files and from its init's
//! view of `/proc/net/dev`, in Docker's words and units.

use super::Record;
use super::cgroup;
use crate::format::human;
use std::fs;
use std::time::Instant;

/// One reading of a container's counters. A stopped container reads as
/// all zeros, as Docker shows it.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    at: Instant,
    running: bool,
    /// CPU time its processes used, in nanoseconds (`cpuacct.usage`).
    cpu_ns: u64,
    /// Memory in use without the page cache it could drop at once.
    memory: u64,
    /// Its memory limit, or the host's memory when it has none.
    memory_limit: u64,
    net_rx: u64,
    net_tx: u64,
    block_read: u64,
    block_write: u64,
    pids: u64,
}

impl Sample {
    /// Reads container `record`'s counters now.
    pub fn take(record: &Record) -> Sample {
        let at = Instant::now();
        if !record.state.running {
            return Sample::stopped(at);
        }
        let id = &record.id;
        let read = |controller: &str, file: &str| {
            fs::read_to_string(cgroup::path(controller, id).join(file)).unwrap_or_default()
        };
        let number = |text: String| text.trim().parse::<u64>().unwrap_or(0);
        let usage = number(read("memory", "memory.usage_in_bytes"));
        // Docker's "usage without cache" on cgroup v1: the inactive file
        // pages are reclaimable at once, so they do not count.
        let inactive = stat_field(&read("memory", "memory.stat"), "total_inactive_file");
        let memory = if inactive < usage {
            usage - inactive
        } else {
            usage
        };
        let limit = number(read("memory", "memory.limit_in_bytes"));
        let host = host_memory();
        let (net_rx, net_tx) = net_bytes(record.state.pid);
        let (block_read, block_write) =
            block_bytes(&read("blkio", "blkio.throttle.io_service_bytes_recursive"));
        Sample {
            at,
            running: true,
            cpu_ns: number(read("cpuacct", "cpuacct.usage")),
            memory,
            memory_limit: if limit == 0 || limit > host {
                host
            } else {
                limit
            },
            net_rx,
            net_tx,
            block_read,
            block_write,
            pids: number(read("pids", "pids.current")),
        }
    }

    fn stopped(at: Instant) -> Sample {
        Sample {
            at,
            running: false,
            cpu_ns: 0,
            memory: 0,
            memory_limit: 0,
            net_rx: 0,
            net_tx: 0,
            block_read: 0,
            block_write: 0,
            pids: 0,
        }
    }

    /// The share of one CPU the container used between `earlier` and this
    /// sample, in percent (Docker's: 100% is one CPU busy all the time).
    pub fn cpu_percent(&self, earlier: &Sample) -> f64 {
        let wall = self.at.saturating_duration_since(earlier.at).as_nanos() as f64;
        if !self.running || !earlier.running || wall == 0.0 {
            return 0.0;
        }
        self.cpu_ns.saturating_sub(earlier.cpu_ns) as f64 / wall * 100.0
    }

    /// Docker's `stats` row for `record` (the fields its `--format`
    /// templates name), with the CPU share since `earlier`. `target` is how
    /// the user named the container (its short ID when listed by default).
    pub fn row(
        &self,
        earlier: &Sample,
        record: &Record,
        target: &str,
        no_trunc: bool,
    ) -> serde_json::Value {
        let id = if no_trunc {
            &record.id[..]
        } else {
            &record.id[..12]
        };
        let memory_percent = if self.memory_limit == 0 {
            0.0
        } else {
            self.memory as f64 / self.memory_limit as f64 * 100.0
        };
        serde_json::json!({
            "BlockIO": format!("{} / {}", human::size(self.block_read), human::size(self.block_write)),
            "CPUPerc": format!("{:.2}%", self.cpu_percent(earlier)),
            "Container": target,
            "ID": id,
            "MemPerc": format!("{memory_percent:.2}%"),
            "MemUsage": format!("{} / {}", human::binary_size(self.memory), human::binary_size(self.memory_limit)),
            "Name": record.name.trim_start_matches('/'),
            "NetIO": format!("{} / {}", human::size(self.net_rx), human::size(self.net_tx)),
            "PIDs": self.pids.to_string(),
        })
    }
}

/// A `key value` line's value in a cgroup `memory.stat`.
fn stat_field(text: &str, key: &str) -> u64 {
    text.lines()
        .filter_map(|line| line.split_once(' '))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

/// The host's memory (`MemTotal`), the limit of a container without one.
fn host_memory() -> u64 {
    let text = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// Bytes received and sent on every interface but loopback, as the
/// container's init sees its network namespace.
fn net_bytes(pid: i32) -> (u64, u64) {
    let text = fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap_or_default();
    parse_net_dev(&text)
}

fn parse_net_dev(text: &str) -> (u64, u64) {
    let mut totals = (0, 0);
    for (name, counters) in text.lines().filter_map(|line| line.split_once(':')) {
        if name.trim() == "lo" {
            continue;
        }
        let fields: Vec<u64> = counters
            .split_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        // Receive bytes first, then seven more receive counters, then
        // transmit bytes.
        if fields.len() >= 9 {
            totals.0 += fields[0];
            totals.1 += fields[8];
        }
    }
    totals
}

/// Bytes read and written, summed over devices, from a blkio
/// `io_service_bytes` file (`MAJ:MIN Read N` lines).
fn block_bytes(text: &str) -> (u64, u64) {
    let mut totals = (0, 0);
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, op, value] = fields[..] else {
            continue;
        };
        let value: u64 = value.parse().unwrap_or(0);
        match op {
            "Read" => totals.0 += value,
            "Write" => totals.1 += value,
            _ => {}
        }
    }
    totals
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_dev_sums_every_interface_but_loopback() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
             face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
             lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0\n  \
             eth0:     916       8    0    0    0     0          0         0      420       5    0    0    0     0       0          0\n  \
             eth1:      84       1    0    0    0     0          0         0        0       0    0    0    0     0       0          0\n";
        assert_eq!(parse_net_dev(text), (1000, 420));
    }

    #[test]
    fn block_io_sums_reads_and_writes_over_devices() {
        let text = "8:0 Read 4096\n8:0 Write 512\n8:0 Sync 4608\n8:16 Read 100\n8:16 Write 0\nTotal 4708\n";
        assert_eq!(block_bytes(text), (4196, 512));
    }

    #[test]
    fn memory_stat_fields_are_found_by_whole_key() {
        let text = "cache 10\ninactive_file 7\ntotal_inactive_file 42\n";
        assert_eq!(stat_field(text, "total_inactive_file"), 42);
        assert_eq!(stat_field(text, "inactive_file"), 7);
        assert_eq!(stat_field(text, "missing"), 0);
    }
}
