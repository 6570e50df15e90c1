//! The published-port row of the bench (issue 16): 1 GiB sent from the
//! host to a container through `-p 127.0.0.1:PORT:5000`, by berth, podman
//! and Docker's engine, beside the same transfer with no container at all
//! (the loopback limit). Traffic goes to 127.0.0.1 only.

use super::podman_import;
use berth_harness::dockerd::{DockerFirewall, Dockerd, TestBridge};
use berth_harness::fixture::{FixtureImage, Format};
use berth_harness::{Fixture, Registry};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What one timed transfer sends.
const BYTES: u64 = 1 << 30;
/// Timed transfers per side; the median is reported.
const RUNS: usize = 5;
/// The port the sink listens on inside a container.
const INSIDE: u16 = 5000;

/// The sink, the same busybox on every side: `nc` hands each connection to
/// `dd` (1 MiB reads; nc's own loop reads 1 KiB at a time and would be
/// what is measured), which reads to the end; `done` back tells the sender
/// every byte got there.
fn sink(port: u16) -> Vec<String> {
    [
        "/bin/busybox",
        "nc",
        "-ll",
        "-p",
        &port.to_string(),
        "-e",
        "/bin/busybox",
        "sh",
        "-c",
        "/bin/busybox dd of=/dev/null bs=1M 2>/dev/null; echo done",
    ]
    .map(str::to_string)
    .to_vec()
}

/// One side of the row: its name and the median seconds of its transfers.
struct Side {
    name: String,
    seconds: Option<f64>,
    why_not: Option<String>,
}

pub(super) fn throughput(
    registry: &Registry,
    fixture: &Fixture,
    image: &FixtureImage,
) -> Result<(), String> {
    let mut sides = vec![loopback()];
    sides.push(berth(fixture));
    sides.push(podman(fixture));
    sides.push(docker(registry, fixture, image));
    println!(
        "{:<64} {:>10} {:>10} {:>7}",
        "1 GiB host → container through -p 127.0.0.1:PORT:5000", "time", "MB/s", "berth÷"
    );
    let ours = sides[1].seconds;
    for side in &sides {
        match side.seconds {
            Some(seconds) => println!(
                "{:<64} {:>8.1}ms {:>10.0} {:>6.2}x",
                side.name,
                seconds * 1e3,
                BYTES as f64 / seconds / 1e6,
                ours.map_or(f64::NAN, |ours| ours / seconds)
            ),
            None => println!(
                "{:<64} {}",
                side.name,
                side.why_not.as_deref().unwrap_or("not measured")
            ),
        }
    }
    println!(
        "median of {RUNS} transfers each; berth÷ = berth's time / that side's (below 1: berth is faster)\n"
    );
    Ok(())
}

/// The machine's limit: the same sink on the host, no container, no NAT.
fn loopback() -> Side {
    let port = berth_harness::registry::free_port();
    let name = "loopback, no container (the limit)".to_string();
    let [program, args @ ..] = &sink(port)[..] else {
        unreachable!("the sink has a program")
    };
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let child = match child {
        Ok(child) => KillOnDrop(child),
        Err(e) => return Side::failed(name, format!("busybox nc: {e}")),
    };
    let side = Side::timed(name, port);
    drop(child);
    side
}

/// A sink container of berth's on the default bridge.
fn berth(fixture: &Fixture) -> Side {
    let name = "berth (ctr-run -d -p, netavark's DNAT)".to_string();
    let port = berth_harness::registry::free_port();
    let status = Command::new(super::binary("ctr-run"))
        .arg("--root")
        .arg(fixture.root())
        .args(["-d", "--name", "bench-throughput", "-p"])
        .arg(format!("127.0.0.1:{port}:{INSIDE}"))
        .arg("docker.io/bench/busybox:latest")
        .args(sink(INSIDE))
        .stdout(Stdio::null())
        .status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => return Side::failed(name, format!("ctr-run -d failed: {status}")),
        Err(e) => return Side::failed(name, format!("ctr-run: {e}")),
    }
    let side = Side::timed(name, port);
    let _ = Command::new(super::binary("ctr-rm"))
        .arg("--root")
        .arg(fixture.root())
        .args(["-f", "bench-throughput"])
        .stdout(Stdio::null())
        .status();
    side
}

/// A sink container of podman's on a bridge of netavark's. podman here is
/// configured for CNI without its plugins, so it gets a containers.conf of
/// the bench's own: netavark, and a default network on a subnet the bench
/// owns, its definition kept in a temp dir.
fn podman(fixture: &Fixture) -> Side {
    let name = "podman run -d -p (netavark's DNAT)".to_string();
    let Ok(dir) = tempfile::tempdir() else {
        return Side::failed(name, "no temp dir".into());
    };
    let conf = dir.path().join("containers.conf");
    let written = std::fs::write(
        &conf,
        format!(
            "[network]\nnetwork_backend = \"netavark\"\nnetwork_config_dir = \"{}\"\ndefault_subnet = \"10.197.6.0/24\"\n",
            dir.path().display()
        ),
    );
    if let Err(e) = written {
        return Side::failed(name, format!("containers.conf: {e}"));
    }
    let image = match podman_import(&fixture.store.images_dir().display().to_string()) {
        Ok(image) => image,
        Err(why) => return Side::failed(name, why),
    };
    let podman = |args: &[&str]| {
        let mut command = Command::new("podman");
        command
            .env("CONTAINERS_CONF", &conf)
            .args(["--runtime", "runc", "--cgroup-manager", "cgroupfs"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command
    };
    let port = berth_harness::registry::free_port();
    let published = format!("127.0.0.1:{port}:{INSIDE}");
    let mut args = vec![
        "run",
        "-d",
        "--name",
        "berth-bench-throughput",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        "-p",
        &published,
        &image,
    ];
    let sink = sink(INSIDE);
    args.extend(sink.iter().map(String::as_str));
    let side = match podman(&args).output() {
        Ok(out) if out.status.success() => Side::timed(name, port),
        Ok(out) => Side::failed(
            name,
            format!(
                "podman run failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ),
        Err(e) => Side::failed(name, format!("podman: {e}")),
    };
    let _ = podman(&["rm", "-f", "berth-bench-throughput"]).output();
    side
}

/// A sink container of a private Docker engine (Debian's docker.io) on a
/// bridge and subnet the bench owns, with Docker's default firewall rules
/// and userland proxy: what `docker run -p 127.0.0.1:…` gives a user. The
/// engine's rules go when the row is done.
fn docker(registry: &Registry, fixture: &Fixture, image: &FixtureImage) -> Side {
    const BRIDGE: &str = "berthbt0";
    let name = "docker run -d -p (dockerd 20.10, docker-proxy)".to_string();
    let _firewall = DockerFirewall::save(BRIDGE);
    let engine = TestBridge::new(BRIDGE, "10.197.5.1/24").and_then(|bridge| {
        let flags = [
            &format!("--bridge={BRIDGE}") as &str,
            "--iptables=true",
            "--ip-masq=false",
        ];
        Dockerd::start_with(&registry.host, &flags).map(|engine| (bridge, engine))
    });
    let (_bridge, engine) = match engine {
        Ok(both) => both,
        Err(why) => return Side::failed(name, format!("not measured: {why}")),
    };
    fixture.push(
        image,
        &registry.host,
        "busybox:throughput",
        Format::DockerV2s2,
    );
    let port = berth_harness::registry::free_port();
    let reference = format!("{}/busybox:throughput", registry.host);
    let published = format!("127.0.0.1:{port}:{INSIDE}");
    let mut args = vec!["run", "-d", "-p", &published, &reference];
    let sink = sink(INSIDE);
    args.extend(sink.iter().map(String::as_str));
    let out = engine.run(&args);
    if !out.status.success() {
        return Side::failed(
            name,
            format!(
                "docker run failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        );
    }
    // The engine's drop removes the container, then the engine stops; the
    // firewall's drop then takes its rules away.
    Side::timed(name, port)
}

impl Side {
    fn failed(name: String, why: String) -> Side {
        Side {
            name,
            seconds: None,
            why_not: Some(why),
        }
    }

    /// Waits for the sink behind `port`, then times [`RUNS`] transfers
    /// after one untimed one.
    fn timed(name: String, port: u16) -> Side {
        if let Err(why) = wait_for_sink(port) {
            return Side::failed(name, why);
        }
        let mut times = Vec::new();
        for run in 0..=RUNS {
            match transfer(port, BYTES) {
                Ok(seconds) if run > 0 => times.push(seconds),
                Ok(_) => {}
                Err(why) => return Side::failed(name, why),
            }
        }
        times.sort_by(f64::total_cmp);
        Side {
            name,
            seconds: Some(times[times.len() / 2]),
            why_not: None,
        }
    }
}

/// Empty transfers until one reaches the sink (a proxy may accept before
/// the container listens, so a connection alone proves nothing).
fn wait_for_sink(port: u16) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match transfer(port, 0) {
            Ok(_) => return Ok(()),
            Err(why) if Instant::now() > deadline => {
                return Err(format!("the sink never answered: {why}"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Sends `bytes` to 127.0.0.1:`port` and waits for the sink's `done`;
/// returns the seconds from connecting to that answer.
fn transfer(port: u16, bytes: u64) -> Result<f64, String> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| e.to_string())?;
    let chunk = vec![0u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        stream.write_all(&chunk[..n]).map_err(|e| e.to_string())?;
        left -= n as u64;
    }
    stream
        .shutdown(Shutdown::Write)
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| e.to_string())?;
    if answer != "done\n" {
        return Err(format!("the sink answered {answer:?}, not \"done\""));
    }
    Ok(started.elapsed().as_secs_f64())
}

/// A child process killed and reaped when dropped, even on an early return.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
