//! Test-only pause points: an end-to-end test that must hold a tool still
//! at one instant (ctr-run between leasing its image and recording its
//! container) names a FIFO in an environment variable. Nothing sets these
//! variables in normal use, and unset they cost one `getenv`.

use std::fs::File;
use std::io;

/// `ctr-run`: after the image is resolved and leased, before it is
/// unpacked and the container's record is written.
pub const AFTER_LEASE: &str = "BERTH_TEST_PAUSE_AFTER_LEASE";

/// Starting a container (in `ctr-run`, or its monitor with `-d`/`-t`):
/// after libcontainer created the init, before it is told to start.
pub const BEFORE_START: &str = "BERTH_TEST_PAUSE_BEFORE_START";

/// `net-connect`: the running container set up on the network, its
/// record not yet told.
pub const CONNECTED: &str = "BERTH_TEST_PAUSE_CONNECTED";

/// `ctr-commit`: the new image's blobs written, the container still
/// frozen, the writers' lock held, nothing named yet.
pub const COMMIT_WRITTEN: &str = "BERTH_TEST_PAUSE_COMMIT_WRITTEN";

/// If `variable` names a FIFO, waits here until the test has opened it for
/// writing and closed it again. The test's open returns once we got here
/// (a FIFO's open waits for both ends), so it knows where we are without
/// sleeping; its close lets us go on.
pub fn pause(variable: &str) {
    let Some(path) = std::env::var_os(variable) else {
        return;
    };
    if let Ok(mut fifo) = File::open(path) {
        let _ = io::copy(&mut fifo, &mut io::sink());
    }
}
