//! `cargo xtask bench`: our tools timed side by side with the established
//! ones (skopeo, umoci, podman, runc) by hyperfine, in rounds that
//! alternate them (`timing`), each figure printed as a ratio. Informational: a bench never fails the build.

use crate::prerequisites::Task;
use berth_harness::fixture::Format;
use berth_harness::{Fixture, Registry};
use builds::builds;
use std::path::{Path, PathBuf};
use std::process::Command;
use throughput::throughput;
use timing::time_pair;
use transfers::{pulls, pushes};

mod builds;
mod throughput;
mod timing;
mod tmpfs;
mod transfers;

/// One comparison: the same job done by berth and by an established tool.
struct Comparison {
    name: String,
    ours: String,
    theirs: String,
    /// Run before every timed run of either command (hyperfine --prepare).
    prepare: Option<String>,
}

/// The sections `cargo xtask bench [SECTION...]` can run (all by default).
const SECTIONS: &[&str] = &[
    "runs",
    "throughput",
    "pulls",
    "pushes",
    "builds",
    "images",
    "containers",
];

pub fn run() -> Result<(), String> {
    let wanted: Vec<String> = std::env::args().skip(2).collect();
    if let Some(unknown) = wanted.iter().find(|w| !SECTIONS.contains(&w.as_str())) {
        return Err(format!(
            "no bench section {unknown:?}; sections: {}",
            SECTIONS.join(", ")
        ));
    }
    let want = |section: &str| wanted.is_empty() || wanted.iter().any(|w| w == section);
    crate::build_tools(Task::Bench, true)?;
    let registry = Registry::start();
    let fixture = Fixture::new();
    let image = fixture.busybox("bench/busybox:latest", "bench");
    fixture.push(&image, &registry.host, "busybox:bench", Format::Oci);
    let debian = if want("runs") || want("pulls") {
        debian_image(&fixture, DEBIAN)
    } else {
        None
    };
    if want("runs") {
        runs(&fixture, debian.as_ref())?;
    }
    if want("throughput") {
        throughput(&registry, &fixture, &image)?;
    }
    if want("pulls") {
        pulls(&registry, &fixture, debian.as_ref())?;
    }
    if want("pushes") {
        pushes(&registry, &fixture)?;
    }
    if want("builds") {
        builds()?;
    }
    if want("images") {
        listing_scales()?;
    }
    if want("containers") {
        containers_scale()?;
    }
    Ok(())
}

/// Tagging and running against umoci, runc and podman.
fn runs(fixture: &Fixture, debian: Option<&Debian>) -> Result<(), String> {
    let root = fixture.root().display().to_string();
    let images = fixture.store.images_dir().display().to_string();
    let tool = |name: &str| binary(name).display().to_string();
    let filtered = runc_bundle(fixture, true)?;
    let unfiltered = runc_bundle(fixture, false)?;
    let on_tmpfs = tmpfs::TmpfsStore::copy_of(fixture.root())?;
    // The large image: the Debian rootfs when debootstrap could make one,
    // else busybox plus 120 MiB of data.
    let (large, large_name) = match debian {
        Some(debian) => (
            DEBIAN.to_string(),
            format!("{} MiB Debian rootfs", debian.unpacked >> 20),
        ),
        None => {
            large_image(fixture, "bench/large:latest");
            (
                "bench/large:latest".to_string(),
                "122 MiB image".to_string(),
            )
        }
    };
    let podman_image = podman_import(&images)?;
    let comparisons = vec![
        Comparison {
            name: "tag an image in an OCI layout (img-tag vs umoci tag)".into(),
            ours: format!(
                "{} --root {root} docker.io/bench/busybox:latest docker.io/bench/busybox:ours",
                tool("img-tag")
            ),
            theirs: format!("umoci tag --image {images}:docker.io/bench/busybox:latest theirs"),
            prepare: None,
        },
        Comparison {
            name: "run `true`, seccomp filter on (ctr-run --rm vs runc run)".into(),
            ours: format!(
                "{} --root {root} --rm docker.io/bench/busybox:latest true",
                tool("ctr-run")
            ),
            // $$ is a fresh shell per run, so every runc container ID is new.
            theirs: format!("runc run --bundle {} bench-$$", filtered.path().display()),
            prepare: None,
        },
        Comparison {
            name: "run `true`, no seccomp (ctr-run --rm vs runc run)".into(),
            ours: format!(
                "{} --root {root} --rm --security-opt seccomp=unconfined docker.io/bench/busybox:latest true",
                tool("ctr-run")
            ),
            theirs: format!("runc run --bundle {} bench-$$", unfiltered.path().display()),
            prepare: None,
        },
        // The limit: crun, the fastest runtime, of the same bundle. crun 1.8
        // refuses a hybrid cgroup host, so it runs in a private mount
        // namespace with the cgroup2 mount hidden; the unshare and the
        // umount are on crun's side of the ratio (about 1 ms).
        Comparison {
            name: "run `true`, --network none, seccomp on (vs crun run)".into(),
            ours: format!(
                "{} --root {root} --rm --network none docker.io/bench/busybox:latest true",
                tool("ctr-run")
            ),
            theirs: crun_run(filtered.path()),
            prepare: None,
        },
        Comparison {
            name: "run `true`, --network none, no seccomp (vs crun run)".into(),
            ours: format!(
                "{} --root {root} --rm --network none --security-opt seccomp=unconfined docker.io/bench/busybox:latest true",
                tool("ctr-run")
            ),
            theirs: crun_run(unfiltered.path()),
            prepare: None,
        },
        // The same start with the store on a tmpfs, as crun's state is:
        // the difference to the row above is the disk's, not the runtime's.
        Comparison {
            name: "run `true`, --network none, store on a tmpfs (vs crun run)".into(),
            ours: format!(
                "{} --root {} --rm --network none docker.io/bench/busybox:latest true",
                tool("ctr-run"),
                on_tmpfs.root().display()
            ),
            theirs: crun_run(filtered.path()),
            prepare: None,
        },
        // As a shell user starts containers: after a pause, the machine
        // idle. Back to back, the kernel's RCU grace period that the first
        // cgroup move of each start waits for (see runtime/grace_period.rs)
        // is short; after a pause it is ~10 ms, on both sides.
        Comparison {
            name: "run `true`, --network none, after 0.2 s idle (vs crun run)".into(),
            ours: format!(
                "{} --root {root} --rm --network none docker.io/bench/busybox:latest true",
                tool("ctr-run")
            ),
            theirs: crun_run(filtered.path()),
            prepare: Some("sleep 0.2".into()),
        },
        Comparison {
            name: "what the default bridge adds (ctr-run --rm vs --network none)".into(),
            ours: format!(
                "{} --root {root} --rm docker.io/bench/busybox:latest true",
                tool("ctr-run")
            ),
            theirs: format!(
                "{} --root {root} --rm --network none docker.io/bench/busybox:latest true",
                tool("ctr-run")
            ),
            prepare: None,
        },
        Comparison {
            name: "run `true` in a container (ctr-run --rm vs podman run --rm)".into(),
            ours: format!(
                "{} --root {root} --rm docker.io/bench/busybox:latest true",
                tool("ctr-run")
            ),
            theirs: format!("{PODMAN_RUN} {podman_image} true"),
            prepare: None,
        },
        Comparison {
            // Rootfs preparation must not grow with the image once its
            // layers are unpacked: a ratio near 1 is the goal.
            name: format!("ctr-run --rm `true`: {large_name} vs 2 MiB busybox"),
            ours: format!(
                "{} --root {root} --rm docker.io/{large} true",
                tool("ctr-run")
            ),
            theirs: format!(
                "{} --root {root} --rm docker.io/bench/busybox:latest true",
                tool("ctr-run")
            ),
            prepare: None,
        },
    ];

    compare(["comparison", "berth", "other"], &comparisons)?;
    println!("ratio = berth's time / the other tool's time (below 1: berth is faster)");
    println!("goals: --network none ≤ crun + 5 ms; the bridge adds ≤ 15 ms\n");
    if let Some(debian) = debian {
        first_run(fixture, debian)?;
    }
    Ok(())
}

/// crun running `bundle` in a private mount namespace without the cgroup2
/// mount (crun 1.8 refuses the hybrid layout), a fresh ID per run.
fn crun_run(bundle: &Path) -> String {
    format!(
        "unshare -m sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec crun run --bundle {} bench-$$'",
        bundle.display()
    )
}

/// The first run of the Debian image, its layer unpacked by this run,
/// against the limit: `tar -I pigz -x` of the same layer blob.
fn first_run(fixture: &Fixture, debian: &Debian) -> Result<(), String> {
    let root = fixture.root().display().to_string();
    let image = fixture
        .store
        .resolve_image(DEBIAN)
        .map_err(|e| e.to_string())?;
    let [layer] = image.manifest.layers().as_slice() else {
        return Err("the Debian image has one layer".into());
    };
    let blob = fixture
        .store
        .blob_path(&berth::store::descriptor_digest(layer));
    let config = fixture
        .store
        .read_blob(&image.id())
        .map_err(|e| e.to_string())?;
    let chain = berth::store::chain_ids(&config)
        .pop()
        .ok_or("the Debian image's config has no diff IDs")?;
    let unpacked = fixture.store.layer_dir(&chain);
    let out = tempfile::tempdir().map_err(|e| e.to_string())?;
    let target = out.path().join("rootfs");
    let comparisons = [Comparison {
        name: format!(
            "first ctr-run of {} MiB Debian (vs tar -I pigz -x of its layer)",
            debian.unpacked >> 20
        ),
        ours: format!(
            "{} --root {root} --rm --network none docker.io/{DEBIAN} true",
            binary("ctr-run").display()
        ),
        theirs: format!(
            "mkdir {} && tar -I pigz -xf {} -C {}",
            target.display(),
            blob.display(),
            target.display()
        ),
        // Each run starts from the same state: the last run's files moved
        // aside, not removed (ext4 allocating inodes right after an `rm -rf`
        // of ~10,000 skips each recently deleted one, and both sides took 2
        // to 7 s, growing run by run), everything written so far on disk
        // (ctr-run's syncfs must not flush pigz's files), the page cache
        // emptied (on this VM the side that ran second paid for fresh
        // pages: 0.6 against 1.2 s, or the reverse, by order alone), and
        // the blob read back in, as a first run after a pull finds it.
        prepare: Some(format!(
            "T=$(mktemp -d -p {trash}); mv {} $T/ours 2>/dev/null; mv {} $T/pigz 2>/dev/null; \
             sync; echo 1 > /proc/sys/vm/drop_caches; cat {} > /dev/null",
            unpacked.display(),
            target.display(),
            blob.display(),
            trash = out.path().display(),
        )),
    }];
    compare(["unpack on first run", "ctr-run", "pigz"], &comparisons)?;
    println!("goal: ≤ 1.0x\n");
    Ok(())
}

/// img-ls and img-inspect on stores of 1,000 and 10,000 tagged images
/// (written straight into the store): the absolute times, and how time
/// grows with ten times the images. Goal: img-ls of 10,000 under 200 ms.
fn listing_scales() -> Result<(), String> {
    let small = Fixture::new();
    small.many(1000);
    let large = Fixture::new();
    large.many(10_000);
    let ls = |f: &Fixture| {
        format!(
            "{} --root {} --no-trunc",
            binary("img-ls").display(),
            f.root().display()
        )
    };
    let inspect = |f: &Fixture| {
        format!(
            "{} --root {} many/app-7:latest",
            binary("img-inspect").display(),
            f.root().display()
        )
    };
    scaling(
        ["scaling (1,000 → 10,000 images)", "1,000", "10,000"],
        vec![
            ("img-ls", ls(&small), ls(&large)),
            (
                "img-ls -q",
                format!("{} -q", ls(&small)),
                format!("{} -q", ls(&large)),
            ),
            ("img-inspect of one image", inspect(&small), inspect(&large)),
        ],
    )?;
    println!(
        "growth = time at 10,000 / time at 1,000 (10 would be linear); goal: img-ls < 200 ms at 10,000\n"
    );
    Ok(())
}

/// ctr-ps -a and ctr-inspect over 200 and 2,000 containers: a few real
/// ones (one exited, three running), the rest copies of the exited one's
/// record written straight into the store, as a long-lived machine has
/// them. Goal: ctr-ps -a of 2,000 under 100 ms.
fn containers_scale() -> Result<(), String> {
    let small = Fixture::new();
    let large = Fixture::new();
    for (fixture, count) in [(&small, 200), (&large, 2000)] {
        fixture.busybox("bench/busybox:latest", "bench");
        let root = fixture.root();
        let run = |args: &[&str]| -> Result<(), String> {
            let status = Command::new(binary("ctr-run"))
                .arg("--root")
                .arg(root)
                .args(args)
                .stdout(std::process::Stdio::null())
                .status()
                .map_err(|e| e.to_string())?;
            if status.success() {
                Ok(())
            } else {
                Err(format!("ctr-run {args:?} failed: {status}"))
            }
        };
        run(&[
            "--name",
            "template",
            "--network",
            "none",
            "bench/busybox",
            "true",
        ])?;
        for i in 0..3 {
            let name = format!("running-{i}");
            run(&[
                "-d",
                "--name",
                &name,
                "--network",
                "none",
                "bench/busybox",
                "sleep",
                "600",
            ])?;
        }
        fixture.many_containers("template", count - 4);
    }
    let ps = |root: &Path| {
        format!(
            "{} --root {} -a",
            binary("ctr-ps").display(),
            root.display()
        )
    };
    let inspect = |root: &Path| {
        format!(
            "{} --root {} many-7",
            binary("ctr-inspect").display(),
            root.display()
        )
    };
    let result = scaling(
        [
            "scaling (200 → 2,000 containers, 3 running)",
            "200",
            "2,000",
        ],
        vec![
            ("ctr-ps -a", ps(small.root()), ps(large.root())),
            (
                "ctr-ps -aq",
                format!("{} -q", ps(small.root())),
                format!("{} -q", ps(large.root())),
            ),
            (
                "ctr-ps (running only)",
                ps(small.root()).replace(" -a", ""),
                ps(large.root()).replace(" -a", ""),
            ),
            (
                "ctr-inspect of one container",
                inspect(small.root()),
                inspect(large.root()),
            ),
        ],
    );
    // The Fixtures' drop removes every container, the running ones first
    // stopped.
    result?;
    println!(
        "growth = time at 2,000 / time at 200 (10 would be linear); goal: ctr-ps -a < 100 ms at 2,000\n"
    );
    Ok(())
}

/// Times each row's small and large command in one hyperfine run and
/// prints the growth between them.
fn scaling(headings: [&str; 3], rows: Vec<(&str, String, String)>) -> Result<(), String> {
    let [title, small, large] = headings;
    println!("{title:<64} {small:>10} {large:>10} {:>7}", "growth");
    for (name, small_cmd, large_cmd) in rows {
        // Warm caches (layer sizes, page cache) so we time the steady state.
        for command in [&small_cmd, &large_cmd] {
            Command::new("sh")
                .args(["-c", &format!("{command} >/dev/null")])
                .status()
                .map_err(|e| e.to_string())?;
        }
        let (a, b) = time_pair(&Comparison {
            name: name.to_string(),
            ours: small_cmd,
            theirs: large_cmd,
            prepare: None,
        })?;
        println!(
            "{:<64} {:>8.1}ms {:>8.1}ms {:>6.2}x",
            name,
            a * 1e3,
            b * 1e3,
            b / a
        );
    }
    Ok(())
}

/// A release-built tool: benches never time debug builds.
fn binary(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("target"));
    target.join("release").join(name)
}

/// podman on this kind of machine: runc (crun 1.8 refuses cgroup v1
/// hybrid here), cgroupfs, and limits a container may set without
/// CAP_SYS_RESOURCE.
const PODMAN_RUN: &str = "podman --runtime runc --cgroup-manager cgroupfs run --rm --network none \
     --ulimit nofile=1024:1024 --ulimit nproc=1024:1024";

/// Copies the bench busybox from our store into podman's, so both start
/// from the same image; returns podman's name for it.
fn podman_import(images: &str) -> Result<String, String> {
    let name = "localhost/berth-bench/busybox:latest";
    // skopeo writes podman's storage directly; `podman pull oci:` would
    // derive a name from the (mixed-case) temp path and refuse it.
    berth_harness::tools::skopeo_copy(
        &format!("oci:{images}:docker.io/bench/busybox:latest"),
        &format!("containers-storage:{name}"),
    );
    Ok(name.to_string())
}

/// podman's ID of an image in the bench store: its config digest's hex.
fn podman_id(fixture: &Fixture, reference: &str) -> String {
    fixture
        .store
        .resolve_image(reference)
        .map(|image| image.id().hex().to_string())
        .expect("the bench image is in the bench store")
}

/// Removes an image from podman's storage by ID, under every name it has:
/// a name left by an earlier bench (another registry port) would keep its
/// layers, and podman's next pull would then only write metadata.
fn podman_forget(id: &str) -> String {
    format!("podman rmi -f {id} >/dev/null 2>&1 || true")
}

/// The IDs of every image in podman's storage, intermediate ones too.
fn podman_image_ids() -> std::collections::HashSet<String> {
    Command::new("podman")
        .args(["images", "-a", "-q", "--no-trunc"])
        .output()
        .map(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Runs a shell command for its effect only (cleanup).
fn run_quietly(command: &str) {
    let _ = Command::new("sh").args(["-c", command]).status();
}

/// The reference the Debian rootfs image gets in the bench store.
const DEBIAN: &str = "bench/debian:bookworm";

/// A Debian image in the bench store, and its sizes.
struct Debian {
    unpacked: u64,
    compressed: u64,
}

/// Stores a one-layer image of a Debian bookworm rootfs made by debootstrap
/// (minbase). The rootfs tar is cached under `target/bench-cache`, so only
/// the first bench downloads Debian's packages; without a reachable mirror
/// the bench says so and uses a synthetic image instead.
fn debian_image(fixture: &Fixture, reference: &str) -> Option<Debian> {
    let tar = match debian_rootfs_tar() {
        Ok(tar) => tar,
        Err(why) => {
            println!("no Debian rootfs ({why}); the large image is synthetic\n");
            return None;
        }
    };
    let rootfs = std::fs::read(&tar).ok()?;
    let unpacked = rootfs.len() as u64;
    berth_harness::fixture::write_layers(
        &fixture.store,
        &berth::Reference::parse(reference).expect("valid reference"),
        &[rootfs],
        serde_json::json!({"Cmd": ["bash"]}),
    );
    let image = fixture.store.resolve_image(reference).ok()?;
    let compressed = image
        .manifest
        .layers()
        .iter()
        .map(|l| l.size())
        .sum::<u64>();
    Some(Debian {
        unpacked,
        compressed,
    })
}

/// The path of the cached rootfs tar, made by debootstrap the first time.
fn debian_rootfs_tar() -> Result<PathBuf, String> {
    let cache = crate::workspace_root().join("target/bench-cache");
    let tar = cache.join("debian-bookworm-minbase.tar");
    if tar.exists() {
        return Ok(tar);
    }
    crate::prerequisites::install_packages(&[("debootstrap", "debootstrap")])?;
    std::fs::create_dir_all(&cache).map_err(|e| e.to_string())?;
    let work = tempfile::tempdir_in(&cache).map_err(|e| e.to_string())?;
    let rootfs = work.path().join("rootfs");
    println!(
        "making a Debian rootfs with debootstrap (once; cached in {})",
        cache.display()
    );
    let status = Command::new("debootstrap")
        .args(["--variant=minbase", "bookworm"])
        .arg(&rootfs)
        .arg("http://deb.debian.org/debian")
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("debootstrap: {e}"))?;
    if !status.success() {
        return Err(format!("debootstrap failed: {status}"));
    }
    // Like Debian's own images: no device nodes, no apt lists or caches.
    let partial = work.path().join("rootfs.tar");
    let status = Command::new("tar")
        .args(["--numeric-owner", "--xattrs", "-C"])
        .arg(&rootfs)
        .args([
            "--exclude=./dev/*",
            "--exclude=./var/lib/apt/lists/*",
            "--exclude=./var/cache/apt/*",
            "-cf",
        ])
        .arg(&partial)
        .arg(".")
        .status()
        .map_err(|e| format!("tar: {e}"))?;
    if !status.success() {
        return Err(format!("tar of the rootfs failed: {status}"));
    }
    std::fs::rename(&partial, &tar).map_err(|e| e.to_string())?;
    Ok(tar)
}

/// busybox plus a 120 MiB layer of 1 MiB incompressible files: a large
/// rootfs to show that preparing one costs the same as a small one.
fn large_image(fixture: &Fixture, reference: &str) {
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut tar = tar::Builder::new(Vec::new());
    for n in 0..120 {
        let mut data = vec![0u8; 1 << 20];
        for chunk in data.chunks_mut(8) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            chunk.copy_from_slice(&seed.to_le_bytes()[..chunk.len()]);
        }
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        tar.append_data(&mut header, format!("data/{n:03}.bin"), &data[..])
            .expect("in-memory tar");
    }
    let big = tar.into_inner().expect("in-memory tar");
    berth_harness::fixture::write_layers(
        &fixture.store,
        &berth::Reference::parse(reference).expect("valid reference"),
        &[berth_harness::fixture::busybox_layer("large"), big],
        serde_json::json!({"Cmd": ["sh"]}),
    );
}

/// A runc bundle of the busybox fixture's rootfs running `true`; with
/// `filtered`, under the same seccomp filter ctr-run gives a container (taken
/// from the spec ctr-run saved), so both sides do the same work.
fn runc_bundle(fixture: &Fixture, filtered: bool) -> Result<tempfile::TempDir, String> {
    let run = |args: &[&str]| -> Result<(), String> {
        let status = Command::new(binary(args[0]))
            .arg("--root")
            .arg(fixture.root())
            .args(&args[1..])
            .stdout(std::process::Stdio::null())
            .status()
            .map_err(|e| format!("{}: {e}", args[0]))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("{} failed: {status}", args[0]))
        }
    };
    let name = format!("bench-spec-{}", std::process::id());
    run(&[
        "ctr-run",
        "--name",
        &name,
        "docker.io/bench/busybox:latest",
        "true",
    ])?;
    let records = std::fs::read_dir(fixture.root().join("containers"))
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|dir| {
            std::fs::read_to_string(dir.join("container.json"))
                .is_ok_and(|record| record.contains(&format!("\"/{name}\"")))
        })
        .ok_or("ctr-run left no record")?;
    let ours: serde_json::Value = serde_json::from_slice(
        &std::fs::read(records.join("config.json")).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    run(&["ctr-rm", &name])?;
    let layer = std::fs::read_dir(fixture.root().join("layers"))
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .next()
        .ok_or("no unpacked layer")?;
    let bundle = tempfile::tempdir().map_err(|e| e.to_string())?;
    let copy = Command::new("cp")
        .arg("-a")
        .arg(&layer)
        .arg(bundle.path().join("rootfs"))
        .status()
        .map_err(|e| format!("cp: {e}"))?;
    if !copy.success() {
        return Err("copying the rootfs failed".to_string());
    }
    let spec = Command::new("runc")
        .args(["spec", "--bundle"])
        .arg(bundle.path())
        .status()
        .map_err(|e| format!("runc spec: {e}"))?;
    if !spec.success() {
        return Err("runc spec failed".to_string());
    }
    let path = bundle.path().join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    config["process"]["terminal"] = false.into();
    config["process"]["args"] = serde_json::json!(["true"]);
    if filtered {
        config["linux"]["seccomp"] = ours["linux"]["seccomp"].clone();
    }
    std::fs::write(&path, config.to_string()).map_err(|e| e.to_string())?;
    Ok(bundle)
}

/// Times each comparison and prints a table row per comparison: both
/// medians and their ratio, under `headings` (title, ours, theirs).
fn compare(headings: [&str; 3], comparisons: &[Comparison]) -> Result<(), String> {
    let [title, ours_heading, theirs_heading] = headings;
    println!(
        "{title:<64} {ours_heading:>10} {theirs_heading:>10} {:>7}",
        "ratio"
    );
    for comparison in comparisons {
        let (ours, theirs) = time_pair(comparison)?;
        println!(
            "{:<64} {:>8.1}ms {:>8.1}ms {:>6.2}x",
            comparison.name,
            ours * 1e3,
            theirs * 1e3,
            ours / theirs
        );
    }
    Ok(())
}
