//! Informational exchanges (RFC 2408 §4.8, RFC 2409 §5.7): error notifications we send and
//! receive, Delete payloads, and the notifications of DPD (RFC 3706 §5, in `dpd.rs`) and
//! INITIAL-CONTACT (RFC 2407 §4.6.3.3).
//!
//! Before phase 1 is authenticated there are no keys, so errors travel in clear (they carry
//! the cookies, so only an on-path attacker could forge one, and such an attacker can drop
//! the exchange anyway). Afterwards every informational is encrypted under its own IV
//! (`hash(last phase-1 block | M-ID)`, never moving the phase-1 chain) and carries
//! `HASH(1) = prf(SKEYID_a, M-ID | N/D)`, which is verified in constant time before anything
//! in the message is acted upon.

use std::net::SocketAddr;

use crypto::key_schedule::MessageId;
use isakmp::{
    Cookie, Doi, ExchangeType, Message, Notification, NotifyType, Payload, PayloadType, ProtocolId,
};

use crate::event::{Event, Exchange, FailureReason, Transmit};
use crate::ike_sa::{IkeSa, Phase1};
use crate::quick_mode::QmState;
use crate::sa::context::Ctx;
use crate::wire;

/// Sends the notification for `reason` in clear, for failures before phase 1 is authenticated.
pub(crate) fn notify_unauthenticated(
    local: SocketAddr,
    remote: SocketAddr,
    cookie_i: Cookie,
    cookie_r: Cookie,
    reason: &FailureReason,
    ctx: &mut Ctx<'_>,
) {
    let Some(notify_type) = reason.notify() else { return };
    let mut spi = [0u8; 16];
    spi[..8].copy_from_slice(&cookie_i.0);
    spi[8..].copy_from_slice(&cookie_r.0);
    let payload = Payload::Notification(Notification {
        doi: Doi::Ipsec,
        protocol: ProtocolId::Isakmp,
        spi: &spi,
        notify_type,
        data: &[],
    });
    let bytes =
        wire::cleartext(wire::header(cookie_i, cookie_r, ExchangeType::Informational, 0), vec![payload]);
    ctx.out.transmits.push_back(Transmit::isakmp(local, remote, bytes));
}

/// Sends the notification for a quick-mode `reason` under the IKE SA's protection.
pub(crate) fn notify_failure(sa: &IkeSa, reason: &FailureReason, ctx: &mut Ctx<'_>) {
    let Some(notify_type) = reason.notify() else { return };
    let notification = Payload::Notification(Notification {
        doi: Doi::Ipsec,
        protocol: ProtocolId::Esp,
        spi: &[],
        notify_type,
        data: &[],
    });
    send_protected(sa, &[notification], ctx);
}

/// Sends `payloads` in a new informational exchange under the IKE SA's protection: a fresh
/// random message ID, `HASH(1)` first, encrypted under the exchange's own IV (RFC 2409 §5.7).
/// Does nothing before phase 1 is established.
pub(crate) fn send_protected(sa: &IkeSa, payloads: &[Payload<'_>], ctx: &mut Ctx<'_>) {
    let Phase1::Established { material, .. } = &sa.phase1 else { return };
    let mut id = [0u8; 4];
    while id == [0; 4] {
        ctx.rng.fill(&mut id);
    }
    let message_id = u32::from_be_bytes(id);
    let (mut chain, range) = wire::chain_with_hash_placeholder(material.hash.output_len(), payloads);
    let hash = material.skeyid_a.informational_hash(MessageId(message_id), &chain[range.end..]);
    chain[range].copy_from_slice(&hash);
    let mut iv = material.iv.exchange_chain(material.hash, MessageId(message_id));
    let header = wire::header(sa.cookie_i, sa.cookie_r, ExchangeType::Informational, message_id);
    let bytes = wire::encrypted(header, PayloadType::Hash, chain, &material.key, &mut iv);
    sa.transmit(bytes, ctx);
}

/// Handles an informational message for `sa`.
pub(crate) fn handle(sa: &mut IkeSa, message: &Message<'_>, ctx: &mut Ctx<'_>) {
    match message.encrypted_body() {
        None => handle_cleartext(sa, message, ctx),
        Some(ciphertext) => handle_encrypted(sa, message, ciphertext, ctx),
    }
}

/// A cleartext error notification is believed only while phase 1 runs (afterwards the peer
/// must protect it) and ends phase 1.
fn handle_cleartext(sa: &mut IkeSa, message: &Message<'_>, ctx: &mut Ctx<'_>) {
    if matches!(sa.phase1, Phase1::Established { .. } | Phase1::Failed) {
        return;
    }
    let error = message.payloads().iter().find_map(|p| match p {
        Payload::Notification(n) if n.notify_type.is_error() => Some(n.notify_type),
        _ => None,
    });
    if let Some(notify_type) = error {
        let state = sa.phase1.name();
        let failure =
            sa.failure(sa.phase1_exchange(), state, FailureReason::PeerNotified(notify_type), ctx.config);
        ctx.out.events.push_back(Event::Failed(failure));
        sa.phase1 = Phase1::Failed;
    }
}

fn handle_encrypted(sa: &mut IkeSa, message: &Message<'_>, ciphertext: &[u8], ctx: &mut Ctx<'_>) {
    if let Phase1::InitiatorWaitMm6 { material, .. } = &sa.phase1 {
        let reason = match decrypt_authenticated(material, message, ciphertext) {
            Some(plaintext) => {
                let error =
                    wire::parse_chain(message.first_payload(), &plaintext).ok().and_then(|(payloads, _)| {
                        payloads.iter().find_map(|p| match p {
                            Payload::Notification(n) if n.notify_type.is_error() => Some(n.notify_type),
                            _ => None,
                        })
                    });
                match error {
                    Some(notify_type) => FailureReason::PeerNotified(notify_type),
                    // Authentic, but no error: nothing to act on.
                    None => return,
                }
            }
            // The peer could not read our MM5 (strongSwan answers with an encrypted
            // PAYLOAD-MALFORMED) and we cannot read its answer: each side derived other keys.
            None => FailureReason::KeysDiffer { message: "the peer's encrypted notify in reply to MM5" },
        };
        let state = sa.phase1.name();
        let failure = sa.failure(Exchange::MainMode, state, reason, ctx.config);
        ctx.out.events.push_back(Event::Failed(failure));
        sa.phase1 = Phase1::Failed;
        return;
    }
    let Phase1::Established { material, .. } = &sa.phase1 else { return };
    // Unauthenticated: acting on it would let anyone tear down our SAs.
    let Some(plaintext) = decrypt_authenticated(material, message, ciphertext) else { return };
    let Ok((payloads, _)) = wire::parse_chain(message.first_payload(), &plaintext) else { return };
    if !sa.informational_seen.first_time(message.header.message_id.0) {
        // A replay: informationals are never retransmitted, and acting on a copy would let an
        // on-path attacker keep a dead peer "alive" or move a NAT-T peer to its own port.
        return;
    }
    sa.peer_authenticated(true, ctx);
    let mut deleted_ipsec = Vec::new();
    let mut delete_ike = false;
    for payload in &payloads[1..] {
        match payload {
            Payload::Notification(n) if n.notify_type.is_error() => fail_quick_mode(sa, n, ctx),
            Payload::Notification(n) if n.notify_type == NotifyType::DpdRUThere => {
                crate::dpd::answer(sa, n, ctx);
            }
            Payload::Notification(n) if n.notify_type == NotifyType::DpdRUThereAck => {
                sa.dpd.acknowledged(n);
            }
            Payload::Notification(n) if n.notify_type == NotifyType::InitialContact => {
                sa.initial_contact_received = true;
            }
            Payload::Delete(d) if d.protocol == ProtocolId::Isakmp => delete_ike = true,
            Payload::Delete(d) if matches!(d.protocol, ProtocolId::Esp | ProtocolId::Ah) => {
                deleted_ipsec.extend(d.ipsec_spis().map(|s| s.0));
            }
            _ => {}
        }
    }
    if !deleted_ipsec.is_empty() {
        ctx.out.events.push_back(Event::IpsecSaDeleted { connection: sa.connection, spis: deleted_ipsec });
    }
    if delete_ike {
        ctx.out.events.push_back(Event::IkeSaDeleted {
            connection: sa.connection,
            peer: sa.peer_config(ctx.config).name.clone(),
        });
        sa.phase1 = Phase1::Failed;
    }
}

/// An authenticated error notification ends the quick mode it is about: the one whose SPI it
/// names, or the only one we initiated.
fn fail_quick_mode(sa: &mut IkeSa, notification: &Notification<'_>, ctx: &mut Ctx<'_>) {
    let waiting: Vec<usize> = sa
        .quick_modes
        .iter()
        .enumerate()
        .filter(|(_, q)| matches!(q.state, QmState::InitiatorWaitQm2(_) | QmState::ResponderWaitQm3(_)))
        .map(|(i, _)| i)
        .collect();
    let by_spi = sa.quick_modes.iter().position(|q| q.owns_spi(notification.spi));
    let index = by_spi.or(match waiting.as_slice() {
        [only] => Some(*only),
        _ => None,
    });
    let Some(index) = index else { return };
    let qm = sa.quick_modes.remove(index);
    let failure = sa.failure(
        Exchange::QuickMode,
        qm.state_name(),
        FailureReason::PeerNotified(notification.notify_type),
        ctx.config,
    );
    ctx.out.events.push_back(Event::Failed(failure));
}

/// Decrypts an informational under its own IV (never the phase-1 chain) and returns the
/// plaintext only once its HASH(1) verifies in constant time (RFC 2409 §5.7): nothing in an
/// informational is acted upon before that. `None` when it does not decrypt or verify under
/// our keys.
fn decrypt_authenticated(
    material: &crate::sa::keys::Phase1Material,
    message: &Message<'_>,
    ciphertext: &[u8],
) -> Option<Vec<u8>> {
    let message_id = MessageId(message.header.message_id.0);
    let iv = material.iv.exchange_chain(material.hash, message_id);
    let decrypted = wire::decrypt(ciphertext, &material.key, &iv).ok()?;
    let (payloads, chain_len) = wire::parse_chain(message.first_payload(), &decrypted.plaintext).ok()?;
    let Some(Payload::Hash(hash)) = payloads.first() else { return None };
    let after = wire::after_hash(&decrypted.plaintext, hash.len(), chain_len);
    let _authentic = material.skeyid_a.verify_informational_hash(message_id, after, hash).ok()?;
    Some(decrypted.plaintext)
}
