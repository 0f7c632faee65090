//! Trigger rules files for `cutover serve`: parse or refuse, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = cutover::serve::rules::parse_triggers(text);
    }
});
