//! Unit tests of `instruction`.

use super::*;
use crate::network::NetworkMode;

fn one(text: &str) -> Result<Instruction, ParseError> {
    let d = super::super::parse("Dockerfile", &format!("FROM x\n{text}\n"))?;
    parse_instruction(&d, &d.nodes[1])
}

fn error(text: &str) -> String {
    one(text).unwrap_err().to_string()
}

#[test]
fn unknown_instruction_names_line_and_column() {
    assert_eq!(error("FOO bar"), "Dockerfile:2:1: unknown instruction: FOO");
}

#[test]
fn from_forms() {
    let d = super::super::parse("Dockerfile", "FROM --platform=linux/amd64 a AS Build\n").unwrap();
    assert_eq!(
        parse_instruction(&d, &d.nodes[0]).unwrap(),
        Instruction::From {
            image: "a".into(),
            name: Some("build".into()),
            platform: Some("linux/amd64".into())
        }
    );
    let d = super::super::parse("Dockerfile", "FROM a b\n").unwrap();
    assert!(
        parse_instruction(&d, &d.nodes[0])
            .unwrap_err()
            .message
            .contains("one or three")
    );
}

#[test]
fn exec_and_shell_forms() {
    assert_eq!(
        one(r#"CMD ["a", "b c"]"#).unwrap(),
        Instruction::Cmd(Command::Exec(vec!["a".into(), "b c".into()]))
    );
    assert_eq!(
        one("CMD echo hi").unwrap(),
        Instruction::Cmd(Command::Shell("echo hi".into()))
    );
    // Not valid JSON: a shell command, as Docker treats it.
    assert_eq!(
        one("ENTRYPOINT [oops").unwrap(),
        Instruction::Entrypoint(Command::Shell("[oops".into()))
    );
    assert_eq!(
        Command::Shell("x".into()).argv(&["/bin/sh".into(), "-c".into()]),
        vec!["/bin/sh", "-c", "x"]
    );
}

#[test]
fn env_both_forms() {
    assert_eq!(
        one(r#"ENV A=1 B="two words""#).unwrap(),
        Instruction::Env(vec![
            ("A".into(), "1".into()),
            ("B".into(), r#""two words""#.into())
        ])
    );
    assert_eq!(
        one("ENV A  the rest of it").unwrap(),
        Instruction::Env(vec![("A".into(), "the rest of it".into())])
    );
    assert!(error("ENV A").contains("ENV must have two arguments"));
    assert!(error("ENV A=1 B").contains("can't find = in \"B\""));
}

#[test]
fn arg_with_and_without_default() {
    assert_eq!(
        one("ARG A B=2").unwrap(),
        Instruction::Arg(vec![("A".into(), None), ("B".into(), Some("2".into()))])
    );
}

#[test]
fn copy_flags_and_arity() {
    let Instruction::Copy(c) =
        one("COPY --from=build --chown=1:2 --chmod=755 --link a b /d/").unwrap()
    else {
        panic!()
    };
    assert_eq!(c.sources, vec!["a", "b"]);
    assert_eq!(c.dest, "/d/");
    assert_eq!(c.from.as_deref(), Some("build"));
    assert_eq!(c.chown.as_deref(), Some("1:2"));
    assert_eq!(c.chmod.as_deref(), Some("755"));
    assert!(c.link);
    let Instruction::Copy(c) = one(r#"COPY ["a b", "/d"]"#).unwrap() else {
        panic!()
    };
    assert_eq!(c.sources, vec!["a b"]);
    assert!(error("COPY a").contains("COPY requires at least two arguments"));
    assert!(error("COPY --chmod=9z a b").contains("invalid chmod parameter: 9z"));
    assert_eq!(
        error("COPY --bogus a b"),
        "Dockerfile:2:1: unknown flag: bogus"
    );
    assert!(error("ADD --from=x a b").contains("unknown flag: from"));
}

#[test]
fn run_mounts_and_network() {
    let Instruction::Run {
        mounts, network, ..
    } = one("RUN --mount=type=cache,target=/root/.cache --network=none make").unwrap()
    else {
        panic!()
    };
    assert_eq!(mounts[0].kind, "cache");
    assert_eq!(mounts[0].target, "/root/.cache");
    assert_eq!(network, Some(BuildNetwork::Mode(NetworkMode::None)));
    assert!(error("RUN --network=bridge x").contains("unsupported network mode"));
    assert!(error("RUN --mount=type=weird,target=/x y").contains("unsupported mount type"));
}

#[test]
fn shell_requires_json() {
    assert!(error("SHELL /bin/bash -c").contains("JSON form"));
    assert_eq!(
        one(r#"SHELL ["/bin/bash", "-c"]"#).unwrap(),
        Instruction::Shell(vec!["/bin/bash".into(), "-c".into()])
    );
}

#[test]
fn healthcheck_forms_and_durations() {
    let Instruction::Healthcheck(h) =
        one("HEALTHCHECK --interval=30s --timeout=1m30s --retries=3 CMD curl -f http://x/")
            .unwrap()
    else {
        panic!()
    };
    assert_eq!(h.test, vec!["CMD-SHELL", "curl -f http://x/"]);
    assert_eq!(h.interval, Some(30_000_000_000));
    assert_eq!(h.timeout, Some(90_000_000_000));
    assert_eq!(h.retries, Some(3));
    let Instruction::Healthcheck(h) = one("HEALTHCHECK NONE").unwrap() else {
        panic!()
    };
    assert_eq!(h.test, vec!["NONE"]);
    let Instruction::Healthcheck(h) = one(r#"HEALTHCHECK CMD ["true"]"#).unwrap() else {
        panic!()
    };
    assert_eq!(h.test, vec!["CMD", "true"]);
    assert!(error("HEALTHCHECK PING x").contains("Unknown type \"PING\" in HEALTHCHECK (try CMD)"));
    assert!(error("HEALTHCHECK --interval=soon CMD x").contains("invalid duration"));
    assert_eq!(parse_go_duration("1.5h"), Some(5_400_000_000_000));
    assert_eq!(parse_go_duration("500ms"), Some(500_000_000));
    assert_eq!(parse_go_duration("5"), None);
}

#[test]
fn onbuild_parses_its_trigger_and_refuses_chains() {
    let Instruction::Onbuild(text, inner) = one("ONBUILD COPY a /b").unwrap() else {
        panic!()
    };
    assert_eq!(text, "COPY a /b");
    assert!(matches!(*inner, Instruction::Copy(_)));
    assert!(error("ONBUILD ONBUILD RUN x").contains("Chaining ONBUILD"));
    assert!(error("ONBUILD FROM x").contains("FROM isn't allowed as an ONBUILD trigger"));
    assert!(error("ONBUILD BOGUS x").contains("unknown instruction: BOGUS"));
}

#[test]
fn single_argument_instructions() {
    assert_eq!(
        one("USER app:app").unwrap(),
        Instruction::User("app:app".into())
    );
    assert_eq!(
        one("WORKDIR /a b").unwrap(),
        Instruction::Workdir("/a b".into())
    );
    assert_eq!(
        one("STOPSIGNAL SIGKILL").unwrap(),
        Instruction::StopSignal("SIGKILL".into())
    );
    assert_eq!(
        one("MAINTAINER me <me@x>").unwrap(),
        Instruction::Maintainer("me <me@x>".into())
    );
    assert!(error("USER").contains("USER requires exactly one argument"));
}

#[test]
fn stages_split_globals_and_need_a_from_first() {
    let d = super::super::parse(
        "Dockerfile",
        "ARG V=1\nFROM a AS one\nRUN x\nFROM one\nCMD y\n",
    )
    .unwrap();
    let (globals, list) = stages(&d).unwrap();
    assert_eq!(globals.len(), 1);
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].name.as_deref(), Some("one"));
    assert_eq!(list[1].steps.len(), 1);
    let d = super::super::parse("Dockerfile", "RUN x\nFROM a\n").unwrap();
    assert_eq!(
        stages(&d).unwrap_err().to_string(),
        "Dockerfile:1:1: no build stage in current context"
    );
    let d = super::super::parse("Dockerfile", "FROM a AS x\nFROM b AS X\n").unwrap();
    assert!(
        stages(&d)
            .unwrap_err()
            .message
            .contains("duplicate stage name")
    );
}
