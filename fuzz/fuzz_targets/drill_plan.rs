//! Drill plans: any text parses or is refused with diagnostics, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = cutover_workflows::plan::parse_drill(text);
    }
});
