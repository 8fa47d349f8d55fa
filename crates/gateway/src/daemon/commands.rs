//! The operator's `reset` commands, which change the engine's state rather than display it,
//! and what a metrics scrape asks of the engine loop.

use std::net::IpAddr;
use std::time::Instant;

use ike::Engine;
use serde_json::json;
use tokio::sync::mpsc;

use crate::control::server::Pending;
use crate::control::{Request, Response};

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// `reset ike sa [conn-id N]`: deletes the IKE SAs (all, or one) and says how many went.
pub(super) fn reset_ike_sa(engine: &mut Engine, conn_id: Option<u64>) -> Response {
    let before = engine.ike_sas().count();
    engine.handle_command(
        Instant::now(),
        ike::Command::ResetIkeSa { connection: conn_id.map(ike::ConnectionId) },
    );
    let reset = before.saturating_sub(engine.ike_sas().count());
    Response::Ok { text: format!("{reset} IKE SA(s) reset\n"), json: json!({ "reset": reset }) }
}

/// `reset ipsec sa [remote A] [policy N S]`: deletes the matching IPsec SA pairs and says
/// how many went.
pub(super) fn reset_ipsec_sa(
    engine: &mut Engine,
    remote: Option<IpAddr>,
    policy: Option<(String, u32)>,
) -> Response {
    let before = engine.ipsec_sas(Instant::now()).count();
    engine.handle_command(
        Instant::now(),
        ike::Command::ResetIpsecSa {
            remote,
            policy: policy.map(|(name, sequence)| ike::PolicyId { name, sequence }),
        },
    );
    let reset = before.saturating_sub(engine.ipsec_sas(Instant::now()).count());
    Response::Ok { text: format!("{reset} IPsec SA pair(s) reset\n"), json: json!({ "reset": reset }) }
}

/// What a metrics scrape asks of the engine loop: its counters (the `counters` request,
/// no per-SA rows), through the control server's queue (`None` when the daemon did not
/// answer).
pub(super) fn ask(
    requests: mpsc::Sender<Pending>,
) -> impl Fn() -> BoxFuture<Option<serde_json::Value>> + Send + Sync + 'static {
    move || {
        let requests = requests.clone();
        Box::pin(async move {
            let (reply, answer) = tokio::sync::oneshot::channel();
            requests.send((Request::Counters, None, reply)).await.ok()?;
            match answer.await.ok()? {
                Response::Ok { json, .. } => Some(json),
                Response::Error(_) => None,
            }
        })
    }
}
