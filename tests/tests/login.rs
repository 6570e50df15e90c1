//! img-login and img-logout against the real registry with TLS and
//! htpasswd: credentials are checked before they are kept, kept where
//! Docker keeps them (config.json or a credential helper), and used by
//! img-pull and img-push.

use berth_harness::tools::binary;
use berth_harness::{Fixture, Registry, Run, tool};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// img-login or img-logout (tools without a store) using `config`.
fn with_config(name: &str, config: &Path) -> Command {
    let mut command = Command::new(binary(name));
    command.env("DOCKER_CONFIG", config);
    command
}

fn login(config: &Path, host: &str, password: &str) -> Run {
    Run::of(
        with_config("img-login", config).args(["-u", "berth", "--password-stdin", host]),
        Some(&format!("{password}\n")),
    )
}

fn config_json(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap()
}

/// Pushes a fresh busybox image to `host` with the credentials in `config`.
fn push_with(config: &Path, host: &str, repository: &str) -> Run {
    let fixture = Fixture::new();
    fixture.busybox("src/app:1", repository);
    let target = format!("{host}/{repository}:1");
    Run::of(
        tool("img-tag", fixture.root()).args(["src/app:1", &target]),
        None,
    )
    .success();
    let mut push = tool("img-push", fixture.root());
    push.env("DOCKER_CONFIG", config).args(["-q", &target]);
    Run::of(&mut push, None)
}

#[test]
fn a_login_is_checked_kept_privately_used_and_removed() {
    let registry = Registry::start_tls_auth("berth", "s3cret");
    let config = tempfile::tempdir().unwrap();
    std::fs::write(
        config.path().join("config.json"),
        r#"{"psFormat":"table {{.ID}}","auths":{"other.example:5000":{"auth":"eDp5"}}}"#,
    )
    .unwrap();
    let before = std::fs::read(config.path().join("config.json")).unwrap();

    login(config.path(), &registry.host, "wrong")
        .failure(1)
        .one_error_line(&["unauthorized: incorrect username or password"]);
    assert_eq!(
        std::fs::read(config.path().join("config.json")).unwrap(),
        before
    );

    let logged = login(config.path(), &registry.host, "s3cret").success();
    assert_eq!(logged.stdout, "Login Succeeded\n");
    assert!(logged.stderr.contains("stored unencrypted"), "{logged:#?}");
    let saved = config_json(config.path());
    assert_eq!(saved["auths"][&registry.host]["auth"], "YmVydGg6czNjcmV0");
    assert_eq!(saved["psFormat"], "table {{.ID}}");
    assert_eq!(saved["auths"]["other.example:5000"]["auth"], "eDp5");
    let mode = std::fs::metadata(config.path().join("config.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // The login serves a push and a pull.
    push_with(config.path(), &registry.host, "private/app").success();
    let store = tempfile::tempdir().unwrap();
    let mut pull = tool("img-pull", store.path());
    pull.env("DOCKER_CONFIG", config.path())
        .args(["-q", &format!("{}/private/app:1", registry.host)]);
    Run::of(&mut pull, None).success();

    let out = Run::of(
        with_config("img-logout", config.path()).arg(&registry.host),
        None,
    )
    .success();
    assert_eq!(
        out.stdout,
        format!("Removing login credentials for {}\n", registry.host)
    );
    let left = config_json(config.path());
    assert!(left["auths"].get(&registry.host).is_none(), "{left}");
    assert_eq!(left["psFormat"], "table {{.ID}}");
    assert_eq!(left["auths"]["other.example:5000"]["auth"], "eDp5");
    let again = Run::of(
        with_config("img-logout", config.path()).arg(&registry.host),
        None,
    )
    .success();
    assert_eq!(
        again.stdout,
        format!("Not logged in to {}\n", registry.host)
    );
    push_with(config.path(), &registry.host, "private/again")
        .failure(1)
        .one_error_line(&["401"]);
}

#[test]
fn with_a_credential_helper_the_secret_never_reaches_config_json() {
    let registry = Registry::start_tls_auth("berth", "s3cret");
    let config = tempfile::tempdir().unwrap();
    std::fs::write(
        config.path().join("config.json"),
        r#"{"credsStore":"test"}"#,
    )
    .unwrap();
    // A helper speaking Docker's protocol, keeping one secret in a file.
    let helpers = tempfile::tempdir().unwrap();
    let secrets = helpers.path().join("secrets.json");
    let script = helpers.path().join("docker-credential-test");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nset -e\nfile={}\ncase \"$1\" in\n\
             store) cat > \"$file\" ;;\n\
             get) cat >/dev/null; if [ -f \"$file\" ]; then cat \"$file\"; else echo 'credentials not found in native keychain'; exit 1; fi ;;\n\
             erase) cat >/dev/null; rm \"$file\" ;;\n\
             esac\n",
            secrets.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        helpers.path().display(),
        std::env::var("PATH").unwrap()
    );

    let mut command = with_config("img-login", config.path());
    command
        .env("PATH", &path)
        .args(["-u", "berth", "--password-stdin", &registry.host]);
    let logged = Run::of(&mut command, Some("s3cret\n")).success();
    assert_eq!(logged.stdout, "Login Succeeded\n");
    assert!(!logged.stderr.contains("unencrypted"), "{logged:#?}");
    let file = std::fs::read_to_string(config.path().join("config.json")).unwrap();
    assert!(
        !file.contains("s3cret") && !file.contains("czNjcmV0"),
        "{file}"
    );
    assert_eq!(
        config_json(config.path())["auths"][&registry.host],
        serde_json::json!({})
    );
    let kept: Value = serde_json::from_slice(&std::fs::read(&secrets).unwrap()).unwrap();
    assert_eq!(kept["Secret"], "s3cret");
    assert_eq!(kept["Username"], "berth");

    // img-push asks the helper.
    let fixture = Fixture::new();
    fixture.busybox("src/app:1", "helper push");
    let target = format!("{}/helped/app:1", registry.host);
    Run::of(
        tool("img-tag", fixture.root()).args(["src/app:1", &target]),
        None,
    )
    .success();
    let mut push = tool("img-push", fixture.root());
    push.env("DOCKER_CONFIG", config.path())
        .env("PATH", &path)
        .args(["-q", &target]);
    Run::of(&mut push, None).success();

    let mut logout = with_config("img-logout", config.path());
    logout.env("PATH", &path).arg(&registry.host);
    Run::of(&mut logout, None).success();
    assert!(!secrets.exists());
}

#[test]
fn bad_login_invocations_are_usage_errors() {
    let config = tempfile::tempdir().unwrap();
    Run::of(
        with_config("img-login", config.path()).args(["--password-stdin", "127.0.0.1:1"]),
        Some("x\n"),
    )
    .failure(2)
    .one_error_line(&["Must provide --username with --password-stdin"]);
    Run::of(
        with_config("img-login", config.path()).args(["-p", "x", "--password-stdin", "h"]),
        Some("x\n"),
    )
    .failure(2);
    Run::of(
        with_config("img-login", config.path()).arg("127.0.0.1:1"),
        Some(""),
    )
    .failure(2)
    .one_error_line(&["non TTY device"]);
    assert!(!config.path().join("config.json").exists());
}
