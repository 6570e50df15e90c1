//! The Dockerfile frontend: parsing and splitting into stages never panic,
//! whatever the text; errors are fine.
#![no_main]

use berth::dockerfile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(parsed) = dockerfile::parse("Dockerfile", text) {
        let _ = dockerfile::stages(&parsed);
        for node in &parsed.nodes {
            let _ = dockerfile::split_words(&node.args, parsed.escape);
        }
    }
});
