//! `-u name|uid[:group|gid]` resolved through the container's own
//! /etc/passwd and /etc/group, read without ever leaving its root.

use super::RunError;
use rustix::fs::{Mode, OFlags, ResolveFlags};
use std::io::Read;
use std::path::Path;

/// The numeric identity the container's process runs as.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: Option<String>,
}

/// Reads a file inside `rootfs` with every symlink resolved as if `rootfs`
/// were `/`: an image's `/etc/passwd -> /etc/shadow` stays in the image.
pub fn read_in_root(rootfs: &Path, path: &str) -> Option<String> {
    let root = rustix::fs::open(
        rootfs,
        OFlags::DIRECTORY | OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let fd = rustix::fs::openat2(
        &root,
        path.trim_start_matches('/'),
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
    .ok()?;
    let mut text = String::new();
    std::fs::File::from(fd)
        .take(4 << 20)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// Resolves `spec` (Docker's `-u` syntax, or the image's `User`) against
/// the passwd and group files found in `rootfs`.
pub fn resolve(rootfs: &Path, spec: &str) -> Result<ResolvedUser, RunError> {
    let passwd = read_in_root(rootfs, "/etc/passwd").unwrap_or_default();
    let group = read_in_root(rootfs, "/etc/group").unwrap_or_default();
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let fields = |line: &str| line.split(':').map(str::to_string).collect::<Vec<_>>();
    let entry = passwd
        .lines()
        .map(fields)
        .filter(|f| f.len() >= 7)
        .find(|f| f[0] == user_part || (user_part.parse::<u32>().is_ok() && f[2] == user_part));
    let unknown = |what: &str, name: &str| {
        RunError::User(format!(
            "unable to find {what} {name}: no matching entries in {what} file"
        ))
    };
    let (uid, mut gid, name, home) = match (&entry, user_part.parse::<u32>()) {
        (Some(f), _) => (
            f[2].parse().map_err(|_| unknown("user", user_part))?,
            f[3].parse().map_err(|_| unknown("user", user_part))?,
            Some(f[0].clone()),
            Some(f[5].clone()),
        ),
        (None, Ok(uid)) => (uid, 0, None, None),
        (None, Err(_)) => return Err(unknown("user", user_part)),
    };
    let groups: Vec<Vec<String>> = group.lines().map(fields).filter(|f| f.len() >= 4).collect();
    if let Some(g) = group_part {
        gid = match groups.iter().find(|f| f[0] == g) {
            Some(f) => f[2].parse().map_err(|_| unknown("group", g))?,
            None => g.parse().map_err(|_| unknown("group", g))?,
        };
    }
    // As under Docker, the process's groups are its group, then (for a
    // user given without a group) every group that lists it: root gets
    // `0`, `-u 1000` gets `0`, `-u 1000:1000` gets `1000`.
    let mut additional_gids = vec![gid];
    if group_part.is_none()
        && let Some(name) = &name
    {
        for f in &groups {
            let member = f[3].split(',').any(|m| m == name);
            if let Ok(id) = f[2].parse::<u32>()
                && member
                && id != gid
                && !additional_gids.contains(&id)
            {
                additional_gids.push(id);
            }
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_ids_groups_and_supplementary_groups() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        std::fs::write(
            root.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            root.path().join("etc/group"),
            "root:x:0:\napp:x:1000:\nwheel:x:10:app,other\n",
        )
        .unwrap();
        let app = resolve(root.path(), "app").unwrap();
        assert_eq!(
            (app.uid, app.gid, app.additional_gids.clone()),
            (1000, 1000, vec![1000, 10])
        );
        let numeric = resolve(root.path(), "1000").unwrap();
        assert_eq!(
            (numeric.uid, numeric.additional_gids),
            (1000, vec![1000, 10])
        );
        let unknown = resolve(root.path(), "4000").unwrap();
        assert_eq!((unknown.gid, unknown.additional_gids), (0, vec![0]));
        let root_user = resolve(root.path(), "0").unwrap();
        assert_eq!(root_user.additional_gids, vec![0]);
        let odd = resolve(root.path(), "4242:wheel").unwrap();
        assert_eq!(
            (odd.uid, odd.gid, odd.additional_gids),
            (4242, 10, vec![10])
        );
        assert!(resolve(root.path(), "nobody-here").is_err());
    }

    #[test]
    fn an_absolute_symlink_stays_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", root.path().join("etc/passwd")).unwrap();
        assert_eq!(read_in_root(root.path(), "/etc/passwd"), None);
    }
}
