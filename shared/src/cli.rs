//! Flags every tool shares, so `--root` means the same thing everywhere.

use crate::store::{Store, StoreError};
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// Store root [default: $BERTH_ROOT, else /var/lib/berth as root, else $XDG_DATA_HOME/berth]
    #[arg(long, value_name = "DIR", global = true)]
    pub root: Option<PathBuf>,
}

impl StoreArgs {
    /// Opens (creating if needed) the selected store.
    pub fn open(&self) -> Result<Store, StoreError> {
        Store::open(crate::root::select(self.root.clone()))
    }
}
