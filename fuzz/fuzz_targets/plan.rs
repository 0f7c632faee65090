//! Plans as people write them: any text must parse or be refused with diagnostics, never
//! panic; and a plan that parses must survive the JSON round trip the workflow input takes.
#![no_main]

use cutover_workflows::plan::{Plan, PlanLimits, parse_plan};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(plan) = parse_plan(text, PlanLimits::default()) {
        let _ = plan.problems();
        let json = serde_json::to_string(&plan).expect("a parsed plan serializes");
        let back: Plan = serde_json::from_str(&json).expect("and reads back");
        assert_eq!(back, plan, "the JSON round trip changed the plan");
    }
});
