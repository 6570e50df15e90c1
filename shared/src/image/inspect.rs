//! `img-inspect`: Docker's image-inspect object, built only from what the
//! store holds. Fields the image does not carry are absent, not invented.

use super::ImageView;
use crate::format::human;
use serde_json::{Map, Value, json};

pub fn inspect(view: &ImageView) -> Value {
    let config = &view.config;
    let mut out = Map::new();
    out.insert("Id".into(), json!(view.image.id().to_string()));
    // Each tag once; a name by digest only (a pull by digest) is no tag.
    let mut repo_tags: Vec<String> = Vec::new();
    for t in &view.image.tags {
        if let Some(tag) = t.tag() {
            let name = format!("{}:{tag}", t.familiar_repository());
            if !repo_tags.contains(&name) {
                repo_tags.push(name);
            }
        }
    }
    out.insert("RepoTags".into(), json!(repo_tags));
    let repo_digests: Vec<String> = view
        .image
        .repo_digests
        .iter()
        .filter_map(|r| Some(format!("{}@{}", r.familiar_repository(), r.digest()?)))
        .collect();
    out.insert("RepoDigests".into(), json!(repo_digests));
    out.insert("Parent".into(), json!(""));
    out.insert(
        "Comment".into(),
        json!(config["comment"].as_str().unwrap_or("")),
    );
    if let Some(created) = config.get("created") {
        out.insert("Created".into(), created.clone());
    }
    if let Some(version) = config.get("docker_version") {
        out.insert("DockerVersion".into(), version.clone());
    }
    out.insert(
        "Author".into(),
        json!(config["author"].as_str().unwrap_or("")),
    );
    if let Some(image_config) = config.get("config") {
        out.insert("Config".into(), image_config.clone());
    }
    for (ours, theirs) in [
        ("Architecture", "architecture"),
        ("Variant", "variant"),
        ("Os", "os"),
    ] {
        if let Some(value) = config.get(theirs) {
            out.insert(ours.into(), value.clone());
        }
    }
    if let Some(version) = config.get("os.version") {
        out.insert("OsVersion".into(), version.clone());
    }
    out.insert("Size".into(), json!(view.size));
    out.insert(
        "RootFS".into(),
        json!({
            "Type": config["rootfs"]["type"].as_str().unwrap_or("layers"),
            "Layers": config["rootfs"]["diff_ids"].clone(),
        }),
    );
    let last_tag_time = view
        .image
        .tagged_at
        .map(human::format_rfc3339)
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string());
    out.insert("Metadata".into(), json!({ "LastTagTime": last_tag_time }));
    Value::Object(out)
}
