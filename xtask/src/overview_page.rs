//! berth(7): the overview page. The tools' rows come from the one list in
//! `berth::tools`; the store layout, the pipe contract and the exit codes
//! are the README's, said briefly.

use berth::tools::{self, Group};

/// The page, in roff.
pub fn render() -> String {
    let mut page = String::new();
    let mut line = |text: &str| {
        page.push_str(text);
        page.push('\n');
    };
    line(&format!(
        ".TH BERTH 7 \"\" \"berth {}\" \"berth\"",
        env!("CARGO_PKG_VERSION")
    ));
    line(".SH NAME");
    line(&escape(
        "berth - Docker's image and container workflow as small tools, without a daemon",
    ));
    line(".SH DESCRIPTION");
    line(&escape(
        "Each berth tool does one job of the docker command over one store on disk. \
         The tools pass references, IDs and JSON to one another on standard input and output, \
         so they work in shells, Makefiles and CI steps. \
         Every tool has --help, --version and (where it uses the store) --root DIR. \
         berth with no arguments lists the tools; berth TOOL ARGS... runs one, \
         as does berth with Docker's own command words (berth run, berth image inspect).",
    ));
    line(".SH TOOLS");
    let all = tools::all();
    for group in Group::ALL {
        let members: Vec<_> = all.iter().filter(|tool| tool.group == group).collect();
        if members.is_empty() {
            continue;
        }
        line(&format!(".SS {}", group.title()));
        for tool in members {
            line(".TP");
            line(&format!(".BR {} (1)", escape(tool.name)));
            line(&escape(&format!("{} ({})", tool.summary, tool.docker)));
        }
    }
    line(".SH STORE");
    line(&escape(
        "One directory holds everything: --root DIR, else $BERTH_ROOT, \
         else /var/lib/berth for root and $XDG_DATA_HOME/berth for other users.",
    ));
    line(".PP");
    line(".nf");
    for row in [
        "images/            a plain OCI image layout: oci-layout, index.json, blobs/sha256/",
        "                   (one index.json entry per tag, named by its full reference)",
        "layers/<chain id>/ each layer unpacked once, the lower dirs of every container",
        "containers/<id>/   a container: container.json, config.json, its overlay, its log",
        "runtime/<id>/      the runtime's state while a container runs",
        "cache/             derived data, safe to delete",
        "locks/             the index, collector and lease locks",
        "tmp/               temp files, renamed into place once verified",
    ] {
        line(&escape(row));
    }
    line(".fi");
    line(".PP");
    line(&escape(
        "Blobs are hashed as they stream in, verified, synced and renamed into place, \
         so a killed tool leaves at most a temp file behind. index.json changes under a lock, \
         so tools running in parallel never lose a tag. skopeo, umoci and podman read the \
         layout as it is.",
    ));
    line(".SH PIPE CONTRACT");
    for rule in [
        "An argument - means: read it from standard input.",
        "A tool that takes several targets and gets none reads them from standard input, \
         one per line, when that is not a terminal.",
        "A line is a plain reference, ID or name, or a JSON object another berth tool printed \
         (its reference or Id field is taken).",
        "JSON field names are Docker's where Docker has one, and keep their name and meaning once shipped.",
        "An ID may be shortened to any unique prefix.",
    ] {
        line(".IP \\(bu 2");
        line(&escape(rule));
    }
    line(".PP");
    line(".nf");
    for example in [
        "img-ls -q --filter dangling=true | img-rm",
        "img-pull busybox | ctr-run --rm - echo hi",
        "ctr-ps -aq | ctr-rm -f",
    ] {
        line(&escape(example));
    }
    line(".fi");
    line(".SH EXIT STATUS");
    for (code, meaning) in [
        ("0", "Success."),
        (
            "1",
            "The operation failed (not found, ambiguous, verification failed, registry refused), \
             with one line on standard error: TOOL: what went wrong. A tool with several targets \
             acts on each it can and exits 1 at the end if any failed.",
        ),
        ("2", "Usage error: an unknown flag or a missing argument."),
        (
            "125, 126, 127",
            "ctr-run and ctr-exec: the tool itself failed, the command cannot be invoked, \
             the command was not found. Otherwise they exit with the container command's own code.",
        ),
        (
            "128+N",
            "ctr-run and ctr-exec: the container's command died of signal N.",
        ),
    ] {
        line(".TP");
        line(&format!(".B {}", escape(code)));
        line(&escape(meaning));
    }
    line(".SH SEE ALSO");
    let pages: Vec<String> = all.iter().map(|tool| format!("{}(1)", tool.name)).collect();
    line(&escape(&pages.join(", ")));
    page
}

/// Escapes roff's backslash and hyphens, and a leading control character.
fn escape(words: &str) -> String {
    let escaped = words.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_every_tool_and_its_docker_command() {
        let page = render();
        for tool in tools::all() {
            assert!(
                page.contains(&format!(".BR {} (1)", escape(tool.name))),
                "{}",
                tool.name
            );
            assert!(page.contains(&escape(tool.docker)), "{}", tool.docker);
        }
        for section in ["TOOLS", "STORE", "PIPE CONTRACT", "EXIT STATUS"] {
            assert!(page.contains(&format!(".SH {section}\n")), "{section}");
        }
        assert!(page.lines().skip(1).all(|l| !l.starts_with('\'')));
    }
}
