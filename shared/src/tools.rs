//! The one list of berth's tools: name, group, Docker equivalent, one line
//! of summary and the closest siblings. The `berth` overview, the berth(7)
//! page and every tool's "See also" footer read it, and a test compares it
//! with the workspace's tool crates, so adding a tool is adding one line.

/// One line per tool: `name | group | docker equivalent | summary | see also`.
/// The see-also column names siblings that must be in this list too.
const LIST: &str = "
img-build   | images     | docker build           | Build an image from a Dockerfile                                | img-ls img-push ctr-run
img-ls      | images     | docker images          | List images                                                     | img-inspect img-rm img-pull
img-inspect | images     | docker image inspect   | Display detailed information on one or more images              | img-ls ctr-inspect
img-tag     | images     | docker tag             | Give an image another name                                      | img-ls img-push img-rm
img-rm      | images     | docker rmi             | Remove one or more images                                       | img-prune img-ls ctr-rm
img-prune   | images     | docker image prune     | Remove unused images                                            | img-rm img-fsck ctr-prune
img-save    | images     | docker save            | Save one or more images to a tar archive (stdout by default)    | img-load img-push
img-load    | images     | docker load            | Load images from a tar archive or stdin                         | img-save img-pull
img-history | images     | docker history         | Show the history of an image                                    | img-inspect ctr-commit
img-import  | images     | docker import          | Import a root filesystem tarball as an image                    | ctr-export img-load
img-fsck    | images     | berth's own            | Check the store, and repair what is garbage                     | img-prune ctr-prune
ctr-run     | containers | docker run             | Create and run a new container from an image                    | ctr-ps ctr-exec ctr-logs ctr-stop ctr-rm
ctr-create  | containers | docker create          | Create a new container, to be started by ctr-start              | ctr-start ctr-run ctr-rm
ctr-ps      | containers | docker ps              | List containers                                                 | ctr-inspect ctr-run ctr-rm
ctr-inspect | containers | docker inspect         | Display detailed information on one or more containers          | ctr-ps img-inspect
ctr-exec    | containers | docker exec            | Execute a command in a running container                        | ctr-run ctr-attach ctr-top
ctr-logs    | containers | docker logs            | Fetch the logs of a container                                   | ctr-attach ctr-run ctr-wait
ctr-attach  | containers | docker attach          | Attach to a running container's terminal or output              | ctr-start ctr-logs ctr-exec
ctr-start   | containers | docker start           | Start one or more stopped containers                            | ctr-stop ctr-restart ctr-attach
ctr-stop    | containers | docker stop            | Stop one or more running containers                             | ctr-start ctr-kill ctr-rm
ctr-restart | containers | docker restart         | Restart one or more containers                                  | ctr-stop ctr-start
ctr-kill    | containers | docker kill            | Kill one or more running containers                             | ctr-stop ctr-rm
ctr-wait    | containers | docker wait            | Block until one or more containers stop, then print their exit codes | ctr-run ctr-logs
ctr-top     | containers | docker top             | Display the running processes of a container                    | ctr-exec ctr-ps
ctr-stats   | containers | docker stats           | Display a live stream of container resource usage statistics    | ctr-top ctr-ps ctr-inspect
ctr-update  | containers | docker update          | Update the memory, CPU and PIDs limits of one or more containers | ctr-stats ctr-run ctr-inspect
ctr-pause   | containers | docker pause           | Pause all processes within one or more containers               | ctr-unpause ctr-stop
ctr-unpause | containers | docker unpause         | Unpause all processes within one or more containers             | ctr-pause ctr-start
ctr-rename  | containers | docker rename          | Rename a container                                              | ctr-ps ctr-run
ctr-rm      | containers | docker rm              | Remove one or more containers                                   | ctr-prune ctr-stop img-rm
ctr-prune   | containers | docker container prune | Remove all stopped containers                                   | ctr-rm img-prune
ctr-commit  | containers | docker commit          | Create a new image from a container's changes                   | ctr-diff img-history img-push
ctr-diff    | containers | docker diff            | Inspect changes to files on a container's filesystem            | ctr-commit ctr-export
ctr-export  | containers | docker export          | Export a container's filesystem as a tar archive                | img-import ctr-diff
ctr-cp      | containers | docker cp              | Copy files between a container and the local filesystem         | ctr-exec ctr-export ctr-diff
ctr-port    | containers | docker port            | List port mappings or a specific mapping for the container      | ctr-run ctr-ps net-inspect
net-create  | networks   | docker network create  | Create a network                                                | net-ls net-rm ctr-run
net-ls      | networks   | docker network ls      | List networks                                                   | net-inspect net-create
net-inspect | networks   | docker network inspect | Display detailed information on one or more networks            | net-ls ctr-inspect
net-rm      | networks   | docker network rm      | Remove one or more networks                                     | net-create net-ls
net-connect | networks   | docker network connect | Connect a container to a network                                | net-disconnect net-inspect ctr-run
net-disconnect | networks | docker network disconnect | Disconnect a container from a network                        | net-connect net-inspect
vol-create  | volumes    | docker volume create   | Create a volume                                                 | vol-ls vol-rm ctr-run
vol-ls      | volumes    | docker volume ls       | List volumes                                                    | vol-inspect vol-create vol-prune
vol-inspect | volumes    | docker volume inspect  | Display detailed information on one or more volumes             | vol-ls ctr-inspect
vol-rm      | volumes    | docker volume rm       | Remove one or more volumes                                      | vol-prune vol-ls ctr-rm
vol-prune   | volumes    | docker volume prune    | Remove unused local volumes                                     | vol-rm ctr-prune img-prune
img-pull    | registry   | docker pull            | Download an image from a registry                               | img-push img-ls img-login
img-push    | registry   | docker push            | Upload an image to a registry                                   | img-pull img-tag img-login
img-login   | registry   | docker login           | Log in to a registry                                            | img-logout img-pull img-push
img-logout  | registry   | docker logout          | Log out from a registry                                         | img-login
img-search  | registry   | docker search          | Search Docker Hub, or any registry, for repositories            | img-pull
";

/// Docker's groups of commands, in the order `berth` prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Images,
    Containers,
    Networks,
    Volumes,
    Registry,
}

impl Group {
    pub const ALL: [Group; 5] = [
        Group::Images,
        Group::Containers,
        Group::Networks,
        Group::Volumes,
        Group::Registry,
    ];

    /// The group's heading, as `berth` and berth(7) print it.
    pub fn title(self) -> &'static str {
        match self {
            Group::Images => "Images",
            Group::Containers => "Containers",
            Group::Networks => "Networks",
            Group::Volumes => "Volumes",
            Group::Registry => "Registry",
        }
    }

    fn parse(word: &str) -> Option<Group> {
        Group::ALL
            .into_iter()
            .find(|group| group.title().eq_ignore_ascii_case(word))
    }
}

/// One tool of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tool {
    pub name: &'static str,
    pub group: Group,
    /// The Docker command it stands for (`docker images`), or a note.
    pub docker: &'static str,
    pub summary: &'static str,
    /// Its closest siblings, for "See also".
    pub see_also: Vec<&'static str>,
}

impl Tool {
    /// The Docker command's words after `docker` (`["image", "inspect"]`),
    /// none for a tool Docker has no command for.
    pub fn docker_words(&self) -> Vec<&'static str> {
        match self.docker.strip_prefix("docker ") {
            Some(words) => words.split_whitespace().collect(),
            None => Vec::new(),
        }
    }
}

/// Every tool, in the list's order.
pub fn all() -> Vec<Tool> {
    LIST.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(|line| {
            let cells: Vec<&'static str> = line.split('|').map(str::trim).collect();
            let [name, group, docker, summary, see_also] = cells[..] else {
                panic!("tools::LIST: not five cells: {line}");
            };
            Tool {
                name,
                group: Group::parse(group)
                    .unwrap_or_else(|| panic!("tools::LIST: no group {group:?}: {line}")),
                docker,
                summary,
                see_also: see_also.split_whitespace().collect(),
            }
        })
        .collect()
}

/// The tool of that name.
pub fn find(name: &str) -> Option<Tool> {
    all().into_iter().find(|tool| tool.name == name)
}

/// The tool a Docker command line stands for (`["image", "inspect", "x"]`
/// is img-inspect), the longest match first, with how many words it took.
pub fn by_docker_words(words: &[String]) -> Option<(Tool, usize)> {
    all()
        .into_iter()
        .filter_map(|tool| {
            let docker = tool.docker_words();
            let taken = docker.len();
            let matches = taken > 0
                && words.len() >= taken
                && docker.iter().zip(words).all(|(want, word)| want == word);
            matches.then_some((tool, taken))
        })
        .max_by_key(|(_, taken)| *taken)
}

/// The "See also" footer of a tool's `--help`.
pub fn see_also(name: &str) -> String {
    let siblings = find(name)
        .map(|tool| tool.see_also.join(", "))
        .unwrap_or_default();
    if siblings.is_empty() {
        "See also: berth, which lists every tool.".to_string()
    } else {
        format!("See also: {siblings}; berth lists every tool.")
    }
}

/// The overview `berth` prints: every tool under its Docker group, one
/// line each, the empty groups left out.
pub fn overview() -> String {
    let tools = all();
    let width = tools.iter().map(|tool| tool.name.len()).max().unwrap_or(0);
    let docker_width = tools
        .iter()
        .map(|tool| tool.docker.len())
        .max()
        .unwrap_or(0);
    let mut text = String::new();
    for group in Group::ALL {
        let members: Vec<&Tool> = tools.iter().filter(|tool| tool.group == group).collect();
        if members.is_empty() {
            continue;
        }
        text.push_str(&format!("\n{}:\n", group.title()));
        for tool in members {
            text.push_str(&format!(
                "  {:width$}  {:docker_width$}  {}\n",
                tool.name, tool.docker, tool.summary
            ));
        }
    }
    text
}

/// A tool's `--help` footer: `#[command(version, after_help = berth::see_also!())]`.
#[macro_export]
macro_rules! see_also {
    () => {
        $crate::tools::see_also(env!("CARGO_PKG_NAME"))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_parses_and_names_unique_tools_and_known_siblings() {
        let tools = all();
        assert!(tools.len() >= 30, "{}", tools.len());
        for tool in &tools {
            assert_eq!(
                tools.iter().filter(|t| t.name == tool.name).count(),
                1,
                "{} twice",
                tool.name
            );
            assert!(!tool.see_also.is_empty(), "{} names no sibling", tool.name);
            for sibling in &tool.see_also {
                assert!(find(sibling).is_some(), "{}: no tool {sibling}", tool.name);
                assert_ne!(*sibling, tool.name, "{} names itself", tool.name);
            }
        }
    }

    #[test]
    fn docker_words_find_the_longest_match() {
        let words = |line: &str| line.split(' ').map(String::from).collect::<Vec<_>>();
        let (tool, taken) = by_docker_words(&words("image prune -a")).unwrap();
        assert_eq!((tool.name, taken), ("img-prune", 2));
        let (tool, taken) = by_docker_words(&words("inspect web")).unwrap();
        assert_eq!((tool.name, taken), ("ctr-inspect", 1));
        assert!(by_docker_words(&words("fsck")).is_none());
        assert!(by_docker_words(&words("image")).is_none());
    }

    #[test]
    fn footer_names_the_siblings_and_the_overview() {
        assert_eq!(
            see_also("img-logout"),
            "See also: img-login; berth lists every tool."
        );
        assert_eq!(
            see_also("no-such-tool"),
            "See also: berth, which lists every tool."
        );
    }

    /// Every crate under tools/ but `berth` itself is a row, and every row
    /// is a crate: a new tool cannot be left out of the overview.
    #[test]
    fn the_list_is_the_workspace_s_tools() {
        let tools_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools");
        let mut crates: Vec<String> = std::fs::read_dir(&tools_dir)
            .unwrap()
            .map(|entry| entry.unwrap())
            .filter(|entry| entry.path().join("Cargo.toml").is_file())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name != "berth")
            .collect();
        crates.sort();
        let mut listed: Vec<String> = all().iter().map(|tool| tool.name.to_string()).collect();
        listed.sort();
        let missing: Vec<&String> = crates.iter().filter(|c| !listed.contains(c)).collect();
        let extra: Vec<&String> = listed.iter().filter(|l| !crates.contains(l)).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "tools/ crates not in shared/src/tools.rs: {missing:?}; rows with no crate: {extra:?}"
        );
    }

    /// A tool's binary has a unit-test target exactly when its sources hold
    /// a test. Without `test = false`, `cargo test` links an empty debug
    /// binary per tool, about 60 MB each (3 GB for the workspace, which once
    /// filled CI's disk); with it wrongly set, a tool's tests never run.
    #[test]
    fn a_tool_has_a_test_target_only_when_it_has_tests() {
        let tools_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools");
        let mut wrong = Vec::new();
        for entry in std::fs::read_dir(&tools_dir).unwrap() {
            let dir = entry.unwrap().path();
            let Ok(manifest) = std::fs::read_to_string(dir.join("Cargo.toml")) else {
                continue;
            };
            let has_tests = std::fs::read_dir(dir.join("src")).unwrap().any(|source| {
                std::fs::read_to_string(source.unwrap().path())
                    .is_ok_and(|text| text.contains("#[test]"))
            });
            let test_target = !manifest.contains("\ntest = false");
            if has_tests != test_target {
                wrong.push(format!(
                    "{} (tests: {has_tests}, test target: {test_target})",
                    dir.file_name().unwrap().to_string_lossy()
                ));
            }
        }
        assert!(wrong.is_empty(), "tools/ crates: {wrong:?}");
    }
}
