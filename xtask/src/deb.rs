//! `cargo xtask deb [--bin-dir DIR] [--out DIR]`: a Debian package with the
//! files `cargo xtask install` installs, under /usr, packed by `dpkg-deb`.
//! Our own small packer rather than cargo-deb: the file list is the one the
//! install step already generates (completions and man pages come from the
//! built tools, which cargo-deb's static asset list cannot express without
//! a second generation step), and dpkg-deb is on every Debian machine while
//! cargo-deb would be one more tool to install and build.

use crate::install::{self, Item, Layout};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What the tools need at run time: the C library, libseccomp (the tools
/// that run containers link it) and the network stack bridge networking
/// drives (netavark, its DNS server aardvark-dns, and iptables under it).
pub const DEPENDS: &str = "libc6, libseccomp2, netavark, aardvark-dns, iptables";

pub fn run(args: &[String]) -> Result<(), String> {
    let mut bin_dir = None;
    let mut out = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bin-dir" => bin_dir = Some(PathBuf::from(install::value(&mut args, "--bin-dir")?)),
            "--out" => out = Some(PathBuf::from(install::value(&mut args, "--out")?)),
            other => {
                return Err(format!(
                    "unknown argument {other:?} (usage: cargo xtask deb [--bin-dir DIR] [--out DIR])"
                ));
            }
        }
    }
    let bin_dir = match bin_dir {
        Some(dir) => dir,
        None => install::build_release()?,
    };
    let out = match out {
        Some(dir) => dir,
        None => bin_dir.join("debian"),
    };
    let deb = build(&bin_dir, &out)?;
    println!("{}", deb.display());
    Ok(())
}

/// Builds the package into `out`; returns its path.
pub fn build(bin_dir: &Path, out: &Path) -> Result<PathBuf, String> {
    let arch = command_line("dpkg", &["--print-architecture"])?;
    let version = env!("CARGO_PKG_VERSION");
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let out = &std::path::absolute(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let staging = tempfile::Builder::new()
        .prefix("berth-deb.")
        .tempdir_in(out)
        .map_err(|e| format!("{}: {e}", out.display()))?;
    let root = staging.path();
    let items: Vec<Item> = install::items(bin_dir, Layout::Debian)?;
    install::install_into(&root.join("usr"), items, false)?;
    let control_dir = root.join("DEBIAN");
    std::fs::create_dir(&control_dir).map_err(|e| format!("{}: {e}", control_dir.display()))?;
    let control = control(version, &arch, installed_kib(root)?);
    std::fs::write(control_dir.join("control"), control).map_err(|e| format!("control: {e}"))?;
    let deb = out.join(format!("berth_{version}_{arch}.deb"));
    let partial = out.join(format!(".berth_{version}_{arch}.deb.partial"));
    // zstd: dpkg reads it since 1.21.18 (Debian 12 has 1.21.22), and it
    // packs smaller than gzip -9 in a tenth of gzip -6's time.
    eprintln!(
        "$ dpkg-deb --build {} {}",
        root.display(),
        partial.display()
    );
    let status = Command::new("dpkg-deb")
        .args(["--root-owner-group", "-Zzstd", "--build"])
        .arg(root)
        .arg(&partial)
        // Its "building package" line is a note, not our result.
        .stdout(std::io::stderr())
        .status()
        .map_err(|e| format!("dpkg-deb: {e}"))?;
    if !status.success() {
        let _ = std::fs::remove_file(&partial);
        return Err(format!("dpkg-deb --build failed: {status}"));
    }
    std::fs::rename(&partial, &deb).map_err(|e| format!("{}: {e}", deb.display()))?;
    Ok(deb)
}

fn control(version: &str, arch: &str, installed_kib: u64) -> String {
    format!(
        "Package: berth\n\
         Version: {version}\n\
         Architecture: {arch}\n\
         Maintainer: The berth developers <berth@localhost>\n\
         Installed-Size: {installed_kib}\n\
         Depends: {DEPENDS}\n\
         Section: admin\n\
         Priority: optional\n\
         Description: Docker's image and container workflow as small tools, without a daemon\n \
         img-pull, img-build, img-ls, ctr-run, ctr-ps and their siblings each do one\n \
         job of the docker command over one OCI image layout on disk, and pass\n \
         references, IDs and JSON to one another through pipes. `berth` lists them.\n"
    )
}

/// The unpacked size in KiB, as dpkg wants it.
fn installed_kib(root: &Path) -> Result<u64, String> {
    let mut bytes = 0;
    let mut stack = vec![root.join("usr")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            let entry = entry.map_err(|e| e.to_string())?;
            let meta = entry.metadata().map_err(|e| e.to_string())?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                bytes += meta.len();
            }
        }
    }
    Ok(bytes.div_ceil(1024))
}

fn command_line(program: &str, args: &[&str]) -> Result<String, String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if !output.status.success() {
        return Err(format!("{program} {}: {}", args.join(" "), output.status));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}
