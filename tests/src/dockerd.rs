//! A private Docker engine, the parity suite's oracle: Debian's `dockerd`
//! (docker.io 20.10) with its own data root, exec root, pidfile, config and
//! socket in a temp dir, cgroupfs as its cgroup driver, and by default no
//! bridge and no iptables (callers may give it a [`TestBridge`] of their
//! own). It is driven by Debian's own client, `/usr/bin/docker`, of the
//! same release (the Docker 28 client that may be first on PATH speaks a
//! newer API and words some messages differently). Stopped by PID when the
//! handle drops, even when a scenario panicked.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The engine and the client of the same Debian package.
pub const DOCKERD: &str = "/usr/sbin/dockerd";
pub const DOCKER: &str = "/usr/bin/docker";

/// No bridge and no firewall rules: containers get only a loopback.
pub const NO_NETWORK: &[&str] = &["--bridge=none", "--iptables=false", "--ip-masq=false"];

pub struct Dockerd {
    child: Child,
    dir: tempfile::TempDir,
}

impl Dockerd {
    /// Starts the engine trusting `registry` (`127.0.0.1:<port>`) over plain
    /// HTTP and waits until its socket answers `GET /_ping`. An error says
    /// why it could not start (not installed, exited, never answered).
    pub fn start(registry: &str) -> Result<Dockerd, String> {
        Dockerd::start_with(registry, NO_NETWORK)
    }

    /// Starts the engine with `network` as its networking flags (say,
    /// `--bridge=NAME` for a bridge the caller made, `--iptables=true`).
    pub fn start_with(registry: &str, network: &[&str]) -> Result<Dockerd, String> {
        if !Path::new(DOCKERD).is_file() || !Path::new(DOCKER).is_file() {
            return Err(format!(
                "{DOCKERD} or {DOCKER} is missing (Debian's docker.io; cargo xtask ci installs it)"
            ));
        }
        let dir = tempfile::Builder::new()
            .prefix("berth-dockerd")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let d = dir.path();
        std::fs::write(d.join("daemon.json"), "{}").map_err(|e| e.to_string())?;
        std::fs::create_dir_all(d.join("client")).map_err(|e| e.to_string())?;
        let log = std::fs::File::create(d.join("dockerd.log")).map_err(|e| e.to_string())?;
        let mut command = Command::new(DOCKERD);
        command
            .arg("--config-file")
            .arg(d.join("daemon.json"))
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--pidfile")
            .arg(d.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", d.join("docker.sock").display()))
            .args([
                "--exec-opt",
                "native.cgroupdriver=cgroupfs",
                "--insecure-registry",
                registry,
                "--ip6tables=false",
            ])
            .args(network)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        // If the test process dies without unwinding, the engine goes too.
        // SAFETY: prctl is async-signal-safe and touches no shared state.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = command
            .spawn()
            .map_err(|e| format!("{DOCKERD} could not start: {e}"))?;
        let mut engine = Dockerd { child, dir };
        engine.wait_ready()?;
        Ok(engine)
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("docker.sock")
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                return Err(format!("dockerd exited with {status}: {}", self.log()));
            }
            if self.ping() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "dockerd did not answer on its socket within 60 s: {}",
            self.log()
        ))
    }

    fn ping(&self) -> bool {
        let Ok(mut stream) = UnixStream::connect(self.socket()) else {
            return false;
        };
        let asked = stream.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n");
        let mut answer = String::new();
        asked.is_ok()
            && stream.read_to_string(&mut answer).is_ok()
            && (answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"))
    }

    /// A `docker` command talking to this engine, with a config dir of its
    /// own (no credentials or settings of the machine's user).
    pub fn docker(&self) -> Command {
        let mut command = Command::new(DOCKER);
        command
            .env("DOCKER_HOST", format!("unix://{}", self.socket().display()))
            .env("DOCKER_CONFIG", self.dir.path().join("client"))
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_CONTEXT");
        command
    }

    /// The same `docker` command as a shell line, for tools (hyperfine)
    /// that take one.
    pub fn shell_command(&self) -> String {
        format!(
            "env DOCKER_HOST=unix://{} DOCKER_CONFIG={} {DOCKER}",
            self.socket().display(),
            self.dir.path().join("client").display()
        )
    }

    /// Runs `docker args…` and returns what it produced.
    pub fn run(&self, args: &[&str]) -> Output {
        self.docker()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run docker")
    }

    /// Runs `docker args…` for at most `seconds`, its output dropped;
    /// killed if it is still running then. For the engine's teardown, which
    /// must end even when the engine hangs removing a container.
    fn run_within(&self, args: &[&str], seconds: u64) {
        let Ok(mut child) = self
            .docker()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        else {
            return;
        };
        if !crate::wait_for(seconds, || !matches!(child.try_wait(), Ok(None))) {
            let _ = child.kill();
        }
        let _ = child.wait();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    /// The engine's version, as `docker version` reports the server's.
    pub fn version(&self) -> String {
        let out = self.run(&["version", "--format", "{{.Server.Version}}"]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

/// How long each step of the engine's teardown may take, in seconds.
const TEARDOWN_STEP: u64 = 60;

impl Drop for Dockerd {
    fn drop(&mut self) {
        // Containers first: the engine would otherwise give each running
        // one its stop timeout on the way down.
        let ids = self.run(&["ps", "-aq"]);
        let ids: Vec<String> = String::from_utf8_lossy(&ids.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        // Bounded: Docker 20.10 has been seen to hang for good in the
        // middle of a `rm -f` of a hundred containers, which held the
        // whole test run. The engine is killed below either way.
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids.iter().map(String::as_str));
            self.run_within(&args, TEARDOWN_STEP);
        }
        // Then the networks scenarios made: their bridges are the host's
        // and outlive the engine.
        self.run_within(&["network", "prune", "-f"], TEARDOWN_STEP);
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) on our own child's PID, which we have not reaped.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // The data root holds overlay mounts of containers the engine may
        // not have unmounted; a lazy unmount lets the temp dir go.
        unmount_under(self.dir.path());
    }
}

/// Lazily unmounts every mount point under `dir`, deepest first.
fn unmount_under(dir: &Path) {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = dir.display().to_string();
    let mut points: Vec<&str> = mounts
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|point| point.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for point in points {
        if let Ok(c) = std::ffi::CString::new(point) {
            // SAFETY: a valid C string; MNT_DETACH fails harmlessly if gone.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

/// A Linux bridge a test makes for Docker's engine (`--bridge=NAME`) on a
/// subnet the test owns, so the engine's default network collides with
/// nothing on the host; deleted when dropped.
pub struct TestBridge {
    pub name: String,
}

impl TestBridge {
    /// Makes bridge `name` with the gateway address `cidr` (`10.x.y.1/24`).
    pub fn new(name: &str, cidr: &str) -> Result<TestBridge, String> {
        let ip = |args: &[&str]| -> Result<(), String> {
            let out = Command::new("ip")
                .args(args)
                .output()
                .map_err(|e| format!("ip: {e}"))?;
            match out.status.success() {
                true => Ok(()),
                false => Err(format!(
                    "ip {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                )),
            }
        };
        // One a killed run left goes first.
        let _ = ip(&["link", "del", name]);
        ip(&["link", "add", name, "type", "bridge"])?;
        let bridge = TestBridge {
            name: name.to_string(),
        };
        ip(&["addr", "add", cidr, "dev", name])?;
        ip(&["link", "set", name, "up"])?;
        Ok(bridge)
    }
}

impl Drop for TestBridge {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.name])
            .output();
    }
}

/// What Docker's engine adds to the firewall (its chains, the rules naming
/// them or its bridge) and the FORWARD policy it sets, undone when dropped:
/// only what names Docker or its bridge, so the rules of tests running
/// beside this one stay. Made before an engine with `--iptables=true`
/// starts (the coexistence test, the bench's published-port row).
pub struct DockerFirewall {
    policy: String,
    before: Vec<(String, String)>,
    bridge: &'static str,
}

impl DockerFirewall {
    fn rules() -> Vec<(String, String)> {
        let mut all = Vec::new();
        for table in ["filter", "nat"] {
            for line in sh(&format!("iptables -w -t {table} -S")).lines() {
                all.push((table.to_string(), line.to_string()));
            }
        }
        all
    }

    /// Notes the firewall as it is, before an engine on `bridge` starts.
    pub fn save(bridge: &'static str) -> DockerFirewall {
        let policy = sh("iptables -w -S FORWARD | head -1")
            .split_whitespace()
            .nth(2)
            .unwrap_or("ACCEPT")
            .to_string();
        DockerFirewall {
            policy,
            before: DockerFirewall::rules(),
            bridge,
        }
    }
}

impl Drop for DockerFirewall {
    fn drop(&mut self) {
        sh(&format!("iptables -w -P FORWARD {}", self.policy));
        let docker_s = |line: &str| line.contains("DOCKER") || line.contains(self.bridge);
        let added: Vec<(String, String)> = DockerFirewall::rules()
            .into_iter()
            .filter(|rule| !self.before.contains(rule) && docker_s(&rule.1))
            .collect();
        for (table, line) in &added {
            if let Some(rule) = line.strip_prefix("-A ") {
                sh(&format!("iptables -w -t {table} -D {rule}"));
            }
        }
        for (table, line) in &added {
            if let Some(chain) = line.strip_prefix("-N ") {
                sh(&format!(
                    "iptables -w -t {table} -F {chain}; iptables -w -t {table} -X {chain}"
                ));
            }
        }
    }
}

/// What `sh -c command` printed (empty if it could not run).
fn sh(command: &str) -> String {
    Command::new("sh")
        .args(["-c", command])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        .unwrap_or_default()
}
