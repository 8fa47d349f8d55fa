//! A peer's identity is text of its choosing: every place it becomes operator text (failure
//! reasons, message traces, the views `display ike sa verbose` shows) escapes it, so a peer
//! can neither forge a log line nor break a display.

use std::time::Duration;

use super::util::{Gateway, Pair};
use super::{failure_reasons, tunnel_up};
use crate::trace::{Direction, MessageTrace};
use crate::IdentityConfig;

/// An FQDN that would start a forged log line and ring the terminal's bell.
const FORGED: &str = "fwa.example.net\n2026-12-07T08:00:00Z INFO keysteward: IKE SA up\x07\\";
/// The same, as every operator text must show it: one line, escapes unambiguous.
const ESCAPED: &str = "fwa.example.net\\x0a2026-12-07T08:00:00Z INFO keysteward: IKE SA up\\x07\\\\";

fn forging_gateways(b_expects: Option<IdentityConfig>) -> (Gateway, Gateway) {
    let a = Gateway { local_id: Some(IdentityConfig::Fqdn(FORGED.into())), ..Gateway::fw_a() };
    let b = Gateway { remote_id: b_expects, ..Gateway::fw_b() };
    (a, b)
}

fn one_line(text: &str) {
    assert!(!text.chars().any(char::is_control), "a control character in {text:?}");
}

#[test]
fn a_forged_identity_is_escaped_in_the_failure_reason() {
    let (a, b) = forging_gateways(Some(IdentityConfig::Fqdn("fwa.example.net".into())));
    let mut pair = Pair::new(&a, &b, 41);
    pair.acquire_on_a(a.selector());
    pair.drive_for(Duration::from_secs(120));
    let reasons = failure_reasons(&pair.b);
    assert!(!reasons.is_empty(), "B refuses the identity");
    for reason in &reasons {
        one_line(reason);
    }
    let text = reasons.join("\n");
    assert!(
        text.contains(&format!(
            "peer identity fqdn {ESCAPED} is not the configured remote-id fqdn fwa.example.net"
        )),
        "{text}"
    );
}

#[test]
fn a_forged_identity_is_escaped_in_the_trace_and_the_sa_view() {
    let (a, b) = forging_gateways(None);
    let mut pair = Pair::new(&a, &b, 42);
    pair.b.engine.set_message_trace(true);
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up), "b: {:?}", pair.b.events);
    let view = pair.b.engine.ike_sas().next().expect("B's IKE SA");
    let identity = view.remote_identity.expect("the identity A presented");
    assert_eq!((identity.kind.as_str(), identity.value.as_str()), ("FQDN", ESCAPED));
    let traces: Vec<MessageTrace> = std::iter::from_fn(|| pair.b.engine.poll_message_trace()).collect();
    let mm5 = traces
        .iter()
        .find(|t| t.direction == Direction::Received && t.step.to_string() == "MM5")
        .expect("B traced MM5");
    one_line(&mm5.summary);
    let shown: String = ESCAPED.chars().take(64).collect();
    assert!(mm5.summary.contains(&format!("ID(FQDN {shown}")), "{}", mm5.summary);
}
