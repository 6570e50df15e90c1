//! Image references: parsing never panics, and a parsed reference prints
//! as text that parses back to the same value (normalised or not).
#![no_main]

use berth::Reference;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    if let Ok(reference) = Reference::parse(input) {
        let printed = reference.to_string();
        let again = Reference::parse(&printed).unwrap_or_else(|e| {
            panic!("{input:?} parsed, but its printed form {printed:?} does not: {e}")
        });
        assert_eq!(again, reference, "{input:?} printed as {printed:?}");
        let _ = (reference.repository(), reference.familiar_repository());
        let _ = reference.registry_host();
    }
    if let Ok(reference) = Reference::parse_unnormalised(input) {
        let printed = reference.to_string();
        let again = Reference::parse_unnormalised(&printed).unwrap_or_else(|e| {
            panic!("{input:?} parsed unnormalised, but its printed form {printed:?} does not: {e}")
        });
        assert_eq!(again, reference, "{input:?} printed as {printed:?}");
    }
});
