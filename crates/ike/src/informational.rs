//! Informational exchanges (RFC 2408 §4.8, RFC 2409 §5.7): error notifications we send and
//! receive, Delete payloads, and the notifications of DPD (RFC 3706 §5; the per-SA DPD state is
//! in `dpd.rs`, the R-U-THERE exchange here) and
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

use crate::dpd::DpdTimeout;
use crate::event::{ClearReason, Event, Exchange, Transmit};
use crate::failure::{AuthenticationFailure, FailureReason};
use crate::sa::context::Ctx;
use crate::sa::core::SaCore;
use crate::sa::keys::Phase1Material;
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
    let bytes = wire::clear_notify(cookie_i, cookie_r, notify_type);
    ctx.out.transmits.push_back(Transmit::isakmp(local, remote, bytes));
}

/// Sends the notification for a quick-mode `reason` under the IKE SA's protection.
pub(crate) fn notify_failure(
    sa: &SaCore,
    keys: Option<&Phase1Material>,
    reason: &FailureReason,
    ctx: &mut Ctx<'_>,
) {
    let Some(notify_type) = reason.notify() else { return };
    let notification = Payload::Notification(Notification {
        doi: Doi::Ipsec,
        protocol: ProtocolId::Esp,
        spi: &[],
        notify_type,
        data: &[],
    });
    send_protected(sa, keys, &[notification], ctx);
}

/// Sends `payloads` in a new informational exchange under the IKE SA's protection: a fresh
/// random message ID, `HASH(1)` first, encrypted under the exchange's own IV (RFC 2409 §5.7).
/// Does nothing before phase 1 is established (`keys` is `None`).
pub(crate) fn send_protected(
    sa: &SaCore,
    keys: Option<&Phase1Material>,
    payloads: &[Payload<'_>],
    ctx: &mut Ctx<'_>,
) {
    let Some(material) = keys else { return };
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

/// Phase 1 as an informational sees it: which keys protect it, if any.
pub(crate) enum Phase1View<'a> {
    /// Phase 1 is under way in state `state`; `awaiting_mm6` holds the keys of a main-mode
    /// initiator that sent MM5, under which the peer may answer with an encrypted error.
    Running { exchange: Exchange, state: &'static str, awaiting_mm6: Option<&'a Phase1Material> },
    /// Established under these keys.
    Established(&'a Phase1Material),
    /// Over: nothing is believed any more.
    Failed,
}

/// What an informational did to the IKE SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The SA lives on.
    Continue,
    /// The SA ends: phase 1 failed by the peer's error, or the peer deleted it.
    EndIkeSa,
}

/// Handles an informational message for `sa`. An authenticated error notification about a
/// quick mode goes to `quick_mode_refused` (the IKE SA knows its quick modes, this module
/// does not).
pub(crate) fn handle(
    sa: &mut SaCore,
    phase1: Phase1View<'_>,
    message: &Message<'_>,
    ctx: &mut Ctx<'_>,
    quick_mode_refused: impl FnMut(&SaCore, &Notification<'_>, &mut Ctx<'_>),
) -> Outcome {
    match (message.encrypted_body(), phase1) {
        (_, Phase1View::Failed) => Outcome::Continue,
        (None, Phase1View::Running { exchange, state, .. }) => {
            handle_cleartext(sa, exchange, state, message, ctx)
        }
        (None, Phase1View::Established(_)) => Outcome::Continue,
        (Some(ciphertext), Phase1View::Running { state, awaiting_mm6: Some(keys), .. }) => {
            handle_mm5_answer(sa, state, keys, message, ciphertext, ctx)
        }
        (Some(_), Phase1View::Running { .. }) => Outcome::Continue,
        (Some(ciphertext), Phase1View::Established(keys)) => {
            handle_encrypted(sa, keys, message, ciphertext, ctx, quick_mode_refused)
        }
    }
}

/// A cleartext error notification is looked at only while phase 1 runs (afterwards the peer
/// must protect it). Anyone who saw the cookies can send one, so it does not end phase 1 at
/// once (RFC 2408 §5.1: an unprotected notification is not acted upon): it is remembered as
/// the likely reason if the exchange fails, and a peer that repeats it on every
/// retransmission ends phase 1 with it (`sa::unauthenticated`).
fn handle_cleartext(
    sa: &mut SaCore,
    exchange: Exchange,
    state: &'static str,
    message: &Message<'_>,
    ctx: &mut Ctx<'_>,
) -> Outcome {
    let error = message.payloads().iter().find_map(|p| match p {
        Payload::Notification(n) if n.notify_type.is_error() => Some(n.notify_type),
        _ => None,
    });
    let Some(notify_type) = error else { return Outcome::Continue };
    end_if_repeated(sa.phase1_dropped(exchange, state, FailureReason::PeerNotified(notify_type), ctx))
}

/// [`Outcome::EndIkeSa`] when `repeated` (the unauthenticated failure was repeated enough).
fn end_if_repeated(repeated: bool) -> Outcome {
    if repeated {
        Outcome::EndIkeSa
    } else {
        Outcome::Continue
    }
}

/// An encrypted informational while a main-mode initiator waits for MM6: the peer's answer
/// to MM5 when it could not accept it. An authentic error ends phase 1; one we cannot
/// authenticate is remembered like a cleartext one ([`handle_cleartext`]).
fn handle_mm5_answer(
    sa: &mut SaCore,
    state: &'static str,
    material: &Phase1Material,
    message: &Message<'_>,
    ciphertext: &[u8],
    ctx: &mut Ctx<'_>,
) -> Outcome {
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
                None => return Outcome::Continue,
            }
        }
        // The peer could not read our MM5 (strongSwan answers with an encrypted
        // PAYLOAD-MALFORMED) and we cannot read its answer: each side derived other keys, or
        // someone forged it.
        None => {
            let reason = FailureReason::Authentication(AuthenticationFailure::KeysDiffer {
                message: "the peer's encrypted notify in reply to MM5",
            });
            return end_if_repeated(sa.phase1_dropped(Exchange::MainMode, state, reason, ctx));
        }
    };
    let failure = sa.failure(Exchange::MainMode, state, reason, ctx.config);
    ctx.out.events.push_back(Event::Failed(failure));
    Outcome::EndIkeSa
}

/// An encrypted informational on an established SA: acted upon only once HASH(1) verified
/// and only the first time its message ID is seen.
fn handle_encrypted(
    sa: &mut SaCore,
    material: &Phase1Material,
    message: &Message<'_>,
    ciphertext: &[u8],
    ctx: &mut Ctx<'_>,
    mut quick_mode_refused: impl FnMut(&SaCore, &Notification<'_>, &mut Ctx<'_>),
) -> Outcome {
    // Unauthenticated: acting on it would let anyone tear down our SAs. Counted.
    let Some(plaintext) = decrypt_authenticated(material, message, ciphertext) else {
        let reason = FailureReason::Authentication(AuthenticationFailure::InvalidHash { hash: "HASH(1)" });
        sa.unauthenticated.dropped("established", reason, false);
        return Outcome::Continue;
    };
    let Ok((payloads, _)) = wire::parse_chain(message.first_payload(), &plaintext) else {
        return Outcome::Continue;
    };
    if !sa.informational_seen.first_time(message.header.message_id.0) {
        // A replay: informationals are never retransmitted, and acting on a copy would let an
        // on-path attacker keep a dead peer "alive" or move a NAT-T peer to its own port.
        sa.informational_seen.dropped_replay();
        return Outcome::Continue;
    }
    sa.peer_authenticated(true, ctx);
    let mut deleted_ipsec = Vec::new();
    let mut delete_ike = false;
    for payload in &payloads[1..] {
        match payload {
            Payload::Notification(n) if n.notify_type.is_error() => quick_mode_refused(sa, n, ctx),
            Payload::Notification(n) if n.notify_type == NotifyType::DpdRUThere => {
                answer_dpd(sa, material, n, ctx);
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
    if !delete_ike {
        return Outcome::Continue;
    }
    ctx.out.events.push_back(Event::IkeSaDeleted {
        connection: sa.connection,
        peer: sa.peer_config(ctx.config).name.clone(),
    });
    Outcome::EndIkeSa
}

/// Runs the DPD timer of an established SA (RFC 3706), whose phase-1 keys are `keys`: an
/// R-U-THERE when the tunnel has been idle. Returns the reason when the peer is dead; the
/// caller clears the SA.
pub(crate) fn dpd_timeout(sa: &mut SaCore, keys: &Phase1Material, ctx: &mut Ctx<'_>) -> Option<ClearReason> {
    let config = *sa.dpd_config.as_deref()?;
    match sa.dpd.on_timeout(ctx.now, &config) {
        DpdTimeout::Nothing => None,
        DpdTimeout::Probe(sequence) => {
            send_dpd(sa, keys, NotifyType::DpdRUThere, sequence, ctx);
            ctx.out.tally.dpd_sent += 1;
            None
        }
        DpdTimeout::Dead(reason) => Some(reason),
    }
}

/// Answers an authenticated R-U-THERE (RFC 3706 §5.1).
fn answer_dpd(sa: &SaCore, keys: &Phase1Material, notification: &Notification<'_>, ctx: &mut Ctx<'_>) {
    let Some(sequence) = notification.dpd_sequence() else { return };
    send_dpd(sa, keys, NotifyType::DpdRUThereAck, sequence, ctx);
}

/// An R-U-THERE or R-U-THERE-ACK with `sequence` (RFC 3706 §5.2).
fn send_dpd(sa: &SaCore, keys: &Phase1Material, notify_type: NotifyType, sequence: u32, ctx: &mut Ctx<'_>) {
    let mut spi = [0u8; 16];
    spi[..8].copy_from_slice(&sa.cookie_i.0);
    spi[8..].copy_from_slice(&sa.cookie_r.0);
    let data = sequence.to_be_bytes();
    let notification = Payload::Notification(Notification {
        doi: Doi::Ipsec,
        protocol: ProtocolId::Isakmp,
        spi: &spi,
        notify_type,
        data: &data,
    });
    send_protected(sa, Some(keys), &[notification], ctx);
}

/// Decrypts an informational under its own IV (never the phase-1 chain) and returns the
/// plaintext only once its HASH(1) verifies in constant time (RFC 2409 §5.7): nothing in an
/// informational is acted upon before that. `None` when it does not decrypt or verify under
/// our keys.
fn decrypt_authenticated(
    material: &Phase1Material,
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
