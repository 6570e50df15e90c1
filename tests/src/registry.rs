//! A real registry (Debian's `docker-registry`, the CNCF distribution
//! server) on a free 127.0.0.1 port, its storage in a temp dir.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Registry {
    /// `127.0.0.1:<port>`, usable as a reference domain.
    pub host: String,
    child: Child,
    dir: tempfile::TempDir,
    /// `/etc/docker/certs.d/<host>`, for a TLS registry: removed on drop.
    certs_dir: Option<PathBuf>,
}

/// Where Docker (and berth) look for a registry's CA.
const DOCKER_CERTS_DIR: &str = "/etc/docker/certs.d";

impl Registry {
    /// Starts a plain-HTTP registry and waits until it answers `GET /v2/`.
    pub fn start() -> Registry {
        let dir = tempfile::tempdir().expect("registry temp dir");
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n",
            dir.path().join("data").display()
        );
        let mut registry = Registry::spawn(dir, host, &config, None);
        registry.wait_ready();
        registry
    }

    /// Starts a registry that serves HTTPS with a certificate from a CA
    /// made for it (installed as `/etc/docker/certs.d/<host>/ca.crt`, as
    /// Docker expects) and requires basic auth as `user`/`password`
    /// (htpasswd, bcrypt).
    pub fn start_tls_auth(user: &str, password: &str) -> Registry {
        let dir = tempfile::tempdir().expect("registry temp dir");
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let d = dir.path();
        let run = |program: &str, args: &[&str]| crate::tools::external(program, args);
        let path = |name: &str| d.join(name).display().to_string();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut args = vec!["req", "-x509", "-days", "2", "-subj", "/CN=berth test CA"];
        args.extend(ec);
        let (ca_key, ca_crt) = (path("ca.key"), path("ca.crt"));
        args.extend(["-keyout", &ca_key, "-out", &ca_crt]);
        run("openssl", &args);
        let (key, csr, crt, ext) = (
            path("server.key"),
            path("server.csr"),
            path("server.crt"),
            path("server.ext"),
        );
        let mut args = vec![
            "req",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            &key,
            "-out",
            &csr,
        ];
        args.extend(ec);
        run("openssl", &args);
        std::fs::write(
            &ext,
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        run(
            "openssl",
            &[
                "x509",
                "-req",
                "-days",
                "2",
                "-in",
                &csr,
                "-CA",
                &ca_crt,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-extfile",
                &ext,
                "-out",
                &crt,
            ],
        );
        let htpasswd = run("htpasswd", &["-Bbn", user, password]);
        std::fs::write(d.join("htpasswd"), htpasswd.trim()).unwrap();
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n  tls:\n    certificate: {crt}\n    key: {key}\nauth:\n  htpasswd:\n    realm: berth-test\n    path: {htpasswd}\n",
            data = d.join("data").display(),
            htpasswd = d.join("htpasswd").display(),
        );
        let certs_dir = Path::new(DOCKER_CERTS_DIR).join(&host);
        std::fs::create_dir_all(&certs_dir)
            .expect("create /etc/docker/certs.d/<host> (tests run as root)");
        std::fs::copy(d.join("ca.crt"), certs_dir.join("ca.crt")).unwrap();
        let mut registry = Registry::spawn(dir, host, &config, Some(certs_dir));
        registry.wait_listening();
        registry
    }

    fn spawn(
        dir: tempfile::TempDir,
        host: String,
        config: &str,
        certs_dir: Option<PathBuf>,
    ) -> Registry {
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let mut command = Command::new("docker-registry");
        command
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // If the test process dies without unwinding, the registry dies too.
        // SAFETY: prctl is async-signal-safe and touches no shared state.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command
            .spawn()
            .expect("docker-registry must be installed (cargo xtask ci installs it)");
        Registry {
            host,
            child,
            dir,
            certs_dir,
        }
    }

    /// The CA that signed a TLS registry's certificate.
    pub fn ca_certificate(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// For a TLS registry: waits until it accepts connections.
    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("docker-registry exited with {status}: {}", self.log());
            }
            if TcpStream::connect(&self.host).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("docker-registry did not listen within 20 s: {}", self.log());
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("docker-registry exited with {status}: {}", self.log());
            }
            if self
                .get("/v2/")
                .is_some_and(|r| r.starts_with("HTTP/1.1 200"))
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("docker-registry did not answer within 20 s: {}", self.log());
    }

    /// A raw HTTP GET against the registry; the response head and body.
    pub fn get(&self, path: &str) -> Option<String> {
        let mut stream = TcpStream::connect(&self.host).ok()?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.host
        )
        .ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        Some(response)
    }

    /// The registry's storage directory (to tamper with in tests).
    pub fn storage(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self.certs_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
