//! Where the store lives: `--root`, else `$BERTH_ROOT`, else `/var/lib/berth`
//! for root and `$XDG_DATA_HOME/berth` (or `~/.local/share/berth`) otherwise.

use std::path::PathBuf;

/// The environment variable that names the store root.
pub const ROOT_ENV: &str = "BERTH_ROOT";

/// Picks the store root from the flag, the environment, or the default.
pub fn select(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| {
        std::env::var_os(ROOT_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
    .unwrap_or_else(default_root)
}

fn default_root() -> PathBuf {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from("/var/lib/berth");
    }
    let data_home = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    data_home.join("berth")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_wins_over_everything() {
        assert_eq!(select(Some("/x".into())), PathBuf::from("/x"));
    }
}
