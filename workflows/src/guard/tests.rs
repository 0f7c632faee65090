use std::collections::BTreeSet;

use super::*;
use crate::plan::{Controls, Trigger, TriggerKind};

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn claims(action: Action, person: &str, nonce: &str) -> Claims {
    Claims {
        action,
        workflow_id: "rollout/shop/prod".to_owned(),
        step: Some("sign-off".to_owned()),
        person: person.to_owned(),
        groups: vec!["release".to_owned()],
        method: "token".to_owned(),
        issued_at: 1_000,
        nonce: nonce.to_owned(),
    }
}

fn plan() -> Plan {
    let mut plan = crate::plan::parse_plan(
        "service: shop\nenvironment: prod\nversion: \"2\"\nseparation: author\ncontrols: {abort: [lead]}\nsteps:\n  - name: sign-off\n    kind: approval\n    approvers: [ana, group:release]\n",
        crate::plan::PlanLimits::default(),
    )
    .expect("plan parses");
    plan.trigger = Some(Trigger {
        kind: TriggerKind::Cli,
        detail: None,
        delivery: None,
        author: Some("bob".to_owned()),
    });
    plan
}

fn check(
    plan: &Plan,
    action: Action,
    a: Option<&Assertion>,
    spent: &BTreeSet<String>,
) -> Result<Identity, String> {
    let r = Request {
        plan,
        workflow_id: "rollout/shop/prod",
        action,
        step: Some("sign-off"),
        by: "someone",
        assertion: a,
        now: DateTime::from_timestamp(1_010, 0),
        spent,
    };
    let approvers = vec!["ana".to_owned(), "group:release".to_owned()];
    let who = identify(&r)?;
    authorize(&r, &who, &approvers)?;
    Ok(who)
}

#[test]
fn a_signed_assertion_from_a_listed_person_is_accepted_once() {
    set_verifying_keys(vec![key(1).verifying_key()]);
    let plan = plan();
    let a = Assertion::sign(&key(1), &claims(Action::Approve, "ana", "n1"));
    let who = check(&plan, Action::Approve, Some(&a), &BTreeSet::new()).expect("accepted");
    assert_eq!((who.person.as_str(), who.method.as_str()), ("ana", "token"));
    let spent = BTreeSet::from(["n1".to_owned()]);
    let replay = check(&plan, Action::Approve, Some(&a), &spent).expect_err("refused");
    assert!(replay.contains("already used"), "{replay}");
}

#[test]
fn refusals_say_why() {
    set_verifying_keys(vec![key(1).verifying_key()]);
    let plan = plan();
    let none = BTreeSet::new();
    let cases = [
        (Action::Approve, None, "needs a verified identity"),
        (
            Action::Approve,
            Some(Assertion::sign(
                &key(2),
                &claims(Action::Approve, "ana", "x"),
            )),
            "does not verify",
        ),
        (
            Action::Approve,
            Some(Assertion::sign(
                &key(1),
                &claims(Action::Promote, "ana", "x"),
            )),
            "is for `promote`",
        ),
        (
            Action::Approve,
            Some(Assertion::sign(
                &key(1),
                &Claims {
                    groups: vec![],
                    ..claims(Action::Approve, "eve", "x")
                },
            )),
            "eve may not approve",
        ),
        (
            Action::Approve,
            Some(Assertion::sign(
                &key(1),
                &claims(Action::Approve, "bob", "x"),
            )),
            "separation: author",
        ),
        (
            Action::Abort,
            Some(Assertion::sign(&key(1), &claims(Action::Abort, "ana", "x"))),
            "plan allows lead",
        ),
        (
            Action::Approve,
            Some(Assertion::sign(
                &key(1),
                &Claims {
                    issued_at: 0,
                    ..claims(Action::Approve, "ana", "x")
                },
            )),
            "more than 300s",
        ),
        (
            Action::Approve,
            Some(Assertion {
                payload: "%%%".to_owned(),
                signature: String::new(),
            }),
            "garbled",
        ),
    ];
    for (action, a, want) in cases {
        let err = check(&plan, action, a.as_ref(), &none).expect_err("refused");
        assert!(
            err.contains(want),
            "{action:?}: `{err}` should say `{want}`"
        );
    }
}

#[test]
fn an_open_plan_takes_the_claimed_name() {
    let mut plan = plan();
    plan.controls = None;
    plan.separation = None;
    plan.steps.clear();
    let who = check(&plan, Action::Pause, None, &BTreeSet::new()).expect("open plans take names");
    assert_eq!(
        (who.person.as_str(), who.method.as_str()),
        ("someone", "claimed")
    );
    assert!(!guarded(&plan));
    plan.controls = Some(Controls::default());
    assert!(guarded(&plan));
}

#[test]
fn keys_read_from_hex_and_pem() {
    use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey, spki::der::pem::LineEnding};
    let k = key(7);
    let hex: String = k.to_bytes().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        parse_signing_key(&hex).expect("hex seed").to_bytes(),
        k.to_bytes()
    );
    let pem = k.to_pkcs8_pem(LineEnding::LF).expect("pem");
    assert_eq!(
        parse_signing_key(&pem).expect("pem key").to_bytes(),
        k.to_bytes()
    );
    let public = k
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("pem");
    assert_eq!(
        parse_verifying_key(&public).expect("pem public"),
        k.verifying_key()
    );
    assert!(parse_verifying_key("abc").is_err());
    assert!(parse_signing_key("-----BEGIN nothing").is_err());
}
