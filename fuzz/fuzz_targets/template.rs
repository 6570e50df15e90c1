//! `--format` Go templates: any template text, parsed and rendered against
//! one fixed image-inspect-like value, never panics; errors are fine.
#![no_main]

use berth::format::template::Template;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn data() -> &'static serde_json::Value {
    static DATA: OnceLock<serde_json::Value> = OnceLock::new();
    DATA.get_or_init(|| {
        serde_json::json!({
            "Id": "sha256:e8f0393b2c18a1f1b6e06c1e3f5b0d4a0b4f1d2c3e4f5a6b7c8d9e0f1a2b3c4d",
            "RepoTags": ["web:latest", "web:1"],
            "RepoDigests": [],
            "Size": 1982000,
            "Ratio": 0.5,
            "Negative": -3,
            "Created": "2024-05-01T10:00:00.123456789Z",
            "Empty": "",
            "Nothing": null,
            "Yes": true,
            "No": false,
            "Config": {
                "Cmd": ["sh", "-c", "echo hi"],
                "Env": ["PATH=/usr/bin:/bin", "A=b"],
                "Labels": {"org.example.a": "x", "b": "y y"},
                "ExposedPorts": {"80/tcp": {}},
                "Entrypoint": null,
                "User": ""
            },
            "State": {"Status": "running", "Pid": 42, "ExitCode": 0},
            "Nested": [[1, 2], {"k": [true, null, "s"]}, []]
        })
    })
}

fuzz_target!(|text: &str| {
    if let Ok(template) = Template::parse(text) {
        let _ = template.render(data());
    }
});
