//! Docker's update: a container's memory, CPU and PIDs limits changed. A
//! running one's cgroups take them at once; its saved spec and its record
//! carry them to every later start.

use super::LifecycleError;
use crate::container::owner::refresh;
use crate::container::{Record, cgroup};
use crate::runtime::spec::{self, CPU_PERIOD, Limits};
use crate::store::Store;
use std::io;

/// Changes the limits that are set in `limits` (a PIDs limit of 0 or less
/// lifts it). Done under the record's lock, so two updates, or an update
/// and a start, do not interleave their writes.
pub fn update(store: &Store, record: &Record, limits: &Limits) -> Result<(), LifecycleError> {
    let record = refresh(store, record.clone());
    let spec_path = store.container_dir(&record.id).join("config.json");
    let mut outcome = Ok(());
    store.update_container(&record.id, |r| {
        outcome = (|| {
            if r.state.running {
                set_cgroups(&r.id, limits)?;
            }
            spec::update_limits(&spec_path, limits)
        })();
        if outcome.is_ok() {
            let host = &mut r.host_config;
            host.memory = limits.memory.unwrap_or(host.memory);
            host.nano_cpus = limits.nano_cpus.unwrap_or(host.nano_cpus);
            host.pids_limit = limits.pids.map_or(host.pids_limit, |p| p.max(0));
        }
    })?;
    outcome.map_err(|source| LifecycleError::CannotUpdate {
        id: record.id.clone(),
        source,
    })
}

/// The running container's cgroup v1 files, as libcontainer wrote them at
/// its start.
fn set_cgroups(id: &str, limits: &Limits) -> io::Result<()> {
    if let Some(memory) = limits.memory {
        cgroup::write_limit(id, "memory", "memory.limit_in_bytes", &memory.to_string())?;
    }
    if let Some(nano) = limits.nano_cpus {
        cgroup::write_limit(id, "cpu", "cpu.cfs_period_us", &CPU_PERIOD.to_string())?;
        let quota = Limits::cpu_quota(nano).to_string();
        cgroup::write_limit(id, "cpu", "cpu.cfs_quota_us", &quota)?;
    }
    if let Some(pids) = limits.pids {
        let max = if pids > 0 {
            pids.to_string()
        } else {
            "max".to_string()
        };
        cgroup::write_limit(id, "pids", "pids.max", &max)?;
    }
    Ok(())
}
