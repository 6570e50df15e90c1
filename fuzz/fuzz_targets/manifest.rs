//! What a registry sends: manifests, indexes and image configs go through
//! every check img-pull makes of them, and none of it panics. The input is
//! the manifest, then (after the first NUL byte, if any) the config.
#![no_main]

use berth::platform::Platform;
use berth::registry::check_untrusted;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (manifest, config) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, data),
    };
    check_untrusted(manifest, config, &Platform::host());
    let arm = Platform {
        os: "linux".to_string(),
        architecture: "arm".to_string(),
        variant: Some("v7".to_string()),
    };
    check_untrusted(manifest, config, &arm);
});
