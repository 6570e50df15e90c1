//! `ctr-run -t`: a real pty inside the container, driven from a real pty
//! outside, as a user at a terminal would; Ctrl-P Ctrl-Q detaches.

use berth_harness::pty::PtySession;
use berth_harness::{Fixture, Run, tool, wait_for};
use serde_json::Value;

const IMG: &str = "test/busybox:latest";

fn fixture() -> Fixture {
    let fixture = Fixture::new();
    fixture.busybox(IMG, "tty");
    fixture
}

#[test]
fn an_interactive_shell_has_a_pty_of_the_terminals_size_and_its_exit_code_comes_back() {
    let fixture = fixture();
    let mut session =
        PtySession::spawn(tool("ctr-run", fixture.root()).args(["-it", "--rm", IMG, "sh"]));
    session.expect("# ", 30);
    session.send(b"tty\r");
    session.expect("/dev/pts/0", 10);
    session.expect("# ", 10);
    session.send(b"stty size\r");
    session.expect("24 80", 10);
    session.expect("# ", 10);
    session.send(b"exit 3\r");
    let status = session.wait(20);
    assert_eq!(status.code(), Some(3), "terminal showed {:?}", session.seen);
    assert!(fixture.container_ids().is_empty(), "--rm left a container");
}

#[test]
fn a_terminal_container_that_ends_at_once_still_shows_its_output_and_code() {
    let fixture = fixture();
    // The container may end before ctr-run connects to its monitor (9 runs
    // in 20 lost the output to a reset connection): each run must hold.
    for _ in 0..15 {
        let mut session = PtySession::spawn(tool("ctr-run", fixture.root()).args([
            "--rm",
            "-t",
            IMG,
            "sh",
            "-c",
            "echo quick; exit 3",
        ]));
        session.expect("quick", 20);
        let status = session.wait(20);
        assert_eq!(status.code(), Some(3), "terminal showed {:?}", session.seen);
    }
    let mut missing = PtySession::spawn(tool("ctr-run", fixture.root()).args([
        "--rm",
        "-t",
        IMG,
        "no-such-command",
    ]));
    assert_eq!(missing.wait(20).code(), Some(127), "{:?}", missing.seen);
    assert!(fixture.container_ids().is_empty());
}

#[test]
fn ctrl_p_ctrl_q_detaches_and_the_container_runs_on() {
    let fixture = fixture();
    let mut session = PtySession::spawn(
        tool("ctr-run", fixture.root()).args(["-it", "--name", "stays", IMG, "sh"]),
    );
    session.expect("# ", 30);
    // Ctrl-P alone is held back, then passed on with the key after it.
    session.send(b"echo typed\x10");
    session.send(b"x\x08\r");
    session.expect("typed", 10);
    session.expect("# ", 10);
    session.send(&[0x10, 0x11]);
    session.expect("read escape sequence", 10);
    let status = session.wait(10);
    assert_eq!(status.code(), Some(0));

    let ids = fixture.container_ids();
    assert_eq!(ids.len(), 1);
    let id = &ids[0];
    let state = &fixture.container_record(id)["State"];
    assert_eq!(state["Status"], "running", "{state}");
    let pid = state["Pid"].as_i64().unwrap() as i32;
    // SAFETY: signal 0 only checks that the process exists.
    assert_eq!(unsafe { libc::kill(pid, 0) }, 0, "the shell died on detach");

    // Its monitor still owns it: the log has the session, and an exit from
    // outside is recorded.
    let log = std::fs::read_to_string(
        fixture
            .root()
            .join("containers")
            .join(id)
            .join(format!("{id}-json.log")),
    )
    .unwrap();
    assert!(log.contains("typed"), "{log}");
    assert!(log.contains("\"stream\":\"stdout\""), "{log}");
    // SAFETY: killing the container's init we just checked.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(
        wait_for(20, || fixture.container_record(id)["State"]["Status"]
            == "exited"),
        "the monitor did not record the exit"
    );
    assert_eq!(fixture.container_record(id)["State"]["ExitCode"], 137);
}

#[test]
fn a_detached_terminal_container_logs_its_output() {
    let fixture = fixture();
    let run = Run::of(
        tool("ctr-run", fixture.root()).args(["-dt", IMG, "sh", "-c", "echo hello; tty"]),
        None,
    )
    .success();
    let id = run.stdout.trim().to_string();
    assert!(
        wait_for(20, || fixture.container_record(&id)["State"]["Status"]
            == "exited"),
        "the container never exited"
    );
    let log = std::fs::read_to_string(
        fixture
            .root()
            .join("containers")
            .join(&id)
            .join(format!("{id}-json.log")),
    )
    .unwrap();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // A terminal turns "\n" into "\r\n", and Docker logs a tty as stdout.
    assert_eq!(lines[0]["log"], "hello\r\n", "{log}");
    assert_eq!(lines[1]["log"], "/dev/pts/0\r\n", "{log}");
    assert!(lines.iter().all(|l| l["stream"] == "stdout"), "{log}");
}

#[test]
fn interactive_tty_without_a_terminal_is_refused_before_anything_is_made() {
    let fixture = fixture();
    Run::of(
        tool("ctr-run", fixture.root()).args(["-it", IMG, "sh"]),
        Some("exit 0\n"),
    )
    .failure(1)
    .one_error_line(&["the input device is not a TTY"]);
    assert!(fixture.container_ids().is_empty());
}

/// `--detach-keys` replaces Ctrl-P Ctrl-Q; ctr-attach gives the terminal
/// back, and the container's exit code comes back through it.
#[test]
fn other_detach_keys_then_ctr_attach_reattaches_the_terminal() {
    let fixture = fixture();
    let mut session = PtySession::spawn(tool("ctr-run", fixture.root()).args([
        "-it",
        "--detach-keys",
        "ctrl-a,d",
        "--name",
        "back",
        IMG,
        "sh",
    ]));
    session.expect("# ", 30);
    session.send(&[0x01, b'd']);
    session.expect("read escape sequence", 10);
    assert_eq!(session.wait(10).code(), Some(0));
    assert_eq!(
        fixture.container_record(&fixture.container_ids()[0])["State"]["Status"],
        "running"
    );

    let mut attached = PtySession::spawn(tool("ctr-attach", fixture.root()).arg("back"));
    attached.send(b"echo again-$((40+2))\r");
    attached.expect("again-42", 10);
    // The default keys detach ctr-attach too.
    attached.send(&[0x10, 0x11]);
    attached.expect("read escape sequence", 10);
    assert_eq!(attached.wait(10).code(), Some(0));

    let mut attached = PtySession::spawn(tool("ctr-attach", fixture.root()).arg("back"));
    attached.send(b"exit 5\r");
    assert_eq!(
        attached.wait(20).code(),
        Some(5),
        "terminal showed {:?}",
        attached.seen
    );

    Run::of(tool("ctr-attach", fixture.root()).arg("back"), None)
        .failure(1)
        .one_error_line(&["cannot attach to a stopped container"]);
    Run::of(
        tool("ctr-run", fixture.root()).args(["-it", "--detach-keys", "ctrl-1", IMG, "sh"]),
        None,
    )
    .failure(125)
    .one_error_line(&["invalid detach key \"ctrl-1\""]);
}

/// Without a terminal, ctr-attach follows the output from the moment it
/// attaches until the container exits, and exits with its code.
#[test]
fn ctr_attach_without_a_terminal_follows_the_output_to_the_exit() {
    use std::io::BufRead;
    let fixture = fixture();
    let script =
        "echo before; while [ ! -e /go ]; do echo tick; sleep 0.05; done; echo after >&2; exit 3";
    Run::of(
        tool("ctr-run", fixture.root()).args(["-d", "--name", "plain", IMG, "sh", "-c", script]),
        None,
    )
    .success();
    // "before" is in the log before we attach, so it is not ours to see.
    let id = fixture.container_ids().pop().unwrap();
    let log = fixture
        .root()
        .join("containers")
        .join(&id)
        .join(format!("{id}-json.log"));
    assert!(wait_for(10, || std::fs::read_to_string(&log)
        .is_ok_and(|text| text.contains("before"))));
    let mut attach = tool("ctr-attach", fixture.root())
        .arg("plain")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once a tick has come through, ctr-attach is following: let it end.
    let mut stdout = std::io::BufReader::new(attach.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert_eq!(first, "tick\n");
    Run::of(
        tool("ctr-exec", fixture.root()).args(["plain", "touch", "/go"]),
        None,
    )
    .success();
    let output = attach.wait_with_output().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert_eq!(output.status.code(), Some(3));
    assert!(rest.lines().all(|l| l == "tick"), "{rest}");
    assert!(!rest.contains("before"));
    assert_eq!(String::from_utf8_lossy(&output.stderr), "after\n");
}

/// Docker's sig-proxy: a Ctrl-C (SIGINT) to ctr-attach goes to the
/// container, whose exit comes back; `--sig-proxy=false` leaves it alone.
#[test]
fn ctr_attach_passes_signals_on_unless_told_not_to() {
    use std::io::BufRead;
    let fixture = fixture();
    let script = "trap 'echo got-int; exit 9' INT; while true; do echo tick; sleep 0.05; done";
    let attach_and_interrupt = |proxy: &str| {
        let mut attach = tool("ctr-attach", fixture.root());
        attach
            .args(["--sig-proxy", proxy, "trapper"])
            .stdout(std::process::Stdio::piped());
        // A run started as a background job ignores SIGINT, and so would
        // the ctr-attach: this one starts as a terminal's would.
        // SAFETY: signal is async-signal-safe, as pre_exec requires.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut attach, || {
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                Ok(())
            });
        }
        let mut attach = attach.spawn().unwrap();
        let mut stdout = std::io::BufReader::new(attach.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line, "tick\n");
        // SAFETY: signalling the child we spawned.
        unsafe { libc::kill(attach.id() as i32, libc::SIGINT) };
        let status = attach.wait().unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
        (status, rest)
    };
    Run::of(
        tool("ctr-run", fixture.root()).args(["-d", "--name", "trapper", IMG, "sh", "-c", script]),
        None,
    )
    .success();

    let (status, _) = attach_and_interrupt("false");
    assert_eq!(status.code(), None, "ctr-attach should die of the SIGINT");
    let id = &fixture.container_ids()[0];
    assert_eq!(fixture.container_record(id)["State"]["Status"], "running");

    let (status, rest) = attach_and_interrupt("true");
    assert_eq!(status.code(), Some(9), "{rest}");
    assert!(rest.ends_with("got-int\n"), "{rest}");
    assert_eq!(fixture.container_record(id)["State"]["ExitCode"], 9);
}

/// `ctr-run -di`: the container's stdin stays open, with nobody writing,
/// until a ctr-attach sends its input; when that input ends the stdin stays
/// open for the next one (Docker's StdinOnce is false for `-d`).
#[test]
fn a_detached_interactive_container_takes_input_from_each_ctr_attach_in_turn() {
    use std::io::{BufRead, Write};
    let fixture = fixture();
    let script = "while read l; do echo \"got $l\"; done; echo closed";
    Run::of(
        tool("ctr-run", fixture.root())
            .args(["-d", "-i", "--name", "feed", IMG, "sh", "-c", script]),
        None,
    )
    .success();
    let attach_and_send = |line: &str| {
        let mut attach = tool("ctr-attach", fixture.root())
            .args(["--sig-proxy=false", "feed"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = attach.stdin.take().unwrap();
        writeln!(input, "{line}").unwrap();
        drop(input);
        let mut stdout = std::io::BufReader::new(attach.stdout.take().unwrap());
        let mut answer = String::new();
        stdout.read_line(&mut answer).unwrap();
        // The container runs on after our input ended: leave it.
        attach.kill().unwrap();
        attach.wait().unwrap();
        answer
    };
    assert_eq!(attach_and_send("one"), "got one\n");
    assert_eq!(attach_and_send("two"), "got two\n");
    let id = &fixture.container_ids()[0];
    assert_eq!(fixture.container_record(id)["State"]["Status"], "running");
    let logs = Run::of(tool("ctr-logs", fixture.root()).arg("feed"), None).success();
    assert_eq!(logs.stdout, "got one\ngot two\n");
}

/// `ctr-start -ai` of a container made with a foreground `-i`: our input
/// goes to it, and its end closes the container's stdin (StdinOnce), so
/// `cat` ends and the container's own exit code comes back.
#[test]
fn ctr_start_ai_feeds_a_container_made_with_i_and_its_eof_closes_the_stdin() {
    let fixture = fixture();
    let script = "cat; echo done; exit 4";
    let first = Run::of(
        tool("ctr-run", fixture.root()).args(["-i", "--name", "cat", IMG, "sh", "-c", script]),
        Some("a\n"),
    )
    .failure(4);
    assert_eq!(first.stdout, "a\ndone\n");
    let again = Run::of(
        tool("ctr-start", fixture.root()).args(["-ai", "cat"]),
        Some("b\nc\n"),
    )
    .failure(4);
    assert_eq!(again.stdout, "b\nc\ndone\n");
    assert_eq!(again.stderr, "");
}
