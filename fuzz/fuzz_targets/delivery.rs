//! Webhook requests: headers and body through the payload parsers, the rules and the
//! signature checks (see `cutover::serve::fuzzing`), never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cutover::serve::fuzzing::delivery(data);
});
