//! img-search: a real registry's catalog over more than one page, and
//! Docker's v1 search API served by the test (Hub's JSON shape) for the
//! table, --limit, filters, --no-trunc and --format.

use berth_harness::hostile::{FakeRegistry, Reply};
use berth_harness::tools::binary;
use berth_harness::{Fixture, Registry, Run, tool};
use std::process::Command;

fn search(args: &[&str]) -> Run {
    let mut command = Command::new(binary("img-search"));
    command
        .env("DOCKER_CONFIG", "/nonexistent/berth-test-docker-config")
        .args(args);
    Run::of(&mut command, None)
}

#[test]
fn a_registry_catalog_is_searched_over_every_page() {
    let registry = Registry::start();
    let fixture = Fixture::new();
    let root = fixture.root();
    fixture.busybox("src/app:1", "search catalog");
    // 105 repositories and one more: two catalog pages of 100.
    let mut names: Vec<String> = (0..105)
        .map(|n| format!("{}/app-{n:03}:1", registry.host))
        .collect();
    names.push(format!("{}/other:1", registry.host));
    // Tagged through the store's API: 106 img-tag runs would be slow.
    let source = berth::Reference::parse("src/app:1").unwrap();
    let descriptor = fixture.store.lookup_tag(&source).unwrap().unwrap();
    for name in &names {
        let reference = berth::Reference::parse(name).unwrap();
        fixture.store.tag(&reference, descriptor.clone()).unwrap();
    }
    let mut push = tool("img-push", root);
    push.env("DOCKER_CONFIG", "/nonexistent/berth-test-docker-config")
        .arg("-q")
        .args(&names);
    Run::of(&mut push, None).success();

    let found = search(&[&format!("{}/app-10", registry.host)]).success();
    let lines: Vec<&str> = found.stdout.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["NAME", "DESCRIPTION", "STARS", "OFFICIAL", "AUTOMATED"]
    );
    let mut listed: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    listed.sort();
    let wanted: Vec<String> = (100..105)
        .map(|n| format!("{}/app-{n}", registry.host))
        .collect();
    assert_eq!(listed, wanted, "{found:#?}");
    let catalog_pages = registry
        .log()
        .lines()
        .filter(|l| l.contains("GET /v2/_catalog"))
        .count();
    assert!(catalog_pages >= 2, "{}", registry.log());

    // --registry, a limit, and a template.
    let limited = search(&[
        "--registry",
        &registry.host,
        "--limit",
        "3",
        "--format",
        "{{.Name}} {{.StarCount}}",
        "app",
    ])
    .success();
    assert_eq!(
        limited.stdout,
        format!(
            "{0}/app-000 0\n{0}/app-001 0\n{0}/app-002 0\n",
            registry.host
        )
    );
}

const HUB_REPLY: &str = r#"{"num_pages":1,"num_results":3,"page":1,"query":"web","results":[
  {"name":"web","description":"The official web server image, with a description well over forty-five characters","star_count":120,"is_official":true,"is_automated":false},
  {"name":"someone/web","description":"a fork\nof it","star_count":3,"is_official":false,"is_automated":true},
  {"name":"other/web","description":"","star_count":40,"is_official":false,"is_automated":false}
]}"#;

#[test]
fn the_v1_search_api_fills_docker_s_table() {
    let hub = FakeRegistry::start();
    hub.route("/v1/search", Reply::json(HUB_REPLY));
    let found = search(&["--registry", &hub.host, "web"]).success();
    assert_eq!(
        found.stdout,
        "NAME          DESCRIPTION                                     STARS     OFFICIAL   AUTOMATED\n\
         web           The official web server image, with a descri…   120       [OK]\n\
         someone/web   a fork of it                                    3                    [OK]\n\
         other/web                                                     40\n"
    );
    assert!(
        hub.requests()
            .iter()
            .any(|r| r.starts_with("GET /v1/search?q=web&n=25 ")),
        "{:?}",
        hub.requests()
    );
    let full = search(&["--registry", &hub.host, "--no-trunc", "web"]).success();
    assert!(full.stdout.contains("well over forty-five characters"));
    let starred = search(&[
        "--registry",
        &hub.host,
        "-f",
        "stars=10",
        "-f",
        "is-official=false",
        "--format",
        "{{.Name}}",
        "web",
    ])
    .success();
    assert_eq!(starred.stdout, "other/web\n");
    let two = search(&[
        "--registry",
        &hub.host,
        "--limit",
        "2",
        "--format",
        "json",
        "web",
    ])
    .success();
    let rows: Vec<serde_json::Value> = two
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["Name"], "web");
    assert_eq!(rows[0]["IsOfficial"], true);
    assert_eq!(rows[1]["StarCount"], 3);
}

#[test]
fn a_registry_without_catalog_or_listener_is_one_line() {
    let empty = FakeRegistry::start();
    search(&["--registry", &empty.host, "x"])
        .failure(1)
        .one_error_line(&[&empty.host, "no catalog"]);
    let port = berth_harness::registry::free_port();
    search(&[&format!("127.0.0.1:{port}/x")])
        .failure(1)
        .one_error_line(&[&format!("127.0.0.1:{port}")]);
    search(&["-f", "colour=blue", "x"])
        .failure(2)
        .one_error_line(&["Invalid filter 'colour=blue'"]);
}
