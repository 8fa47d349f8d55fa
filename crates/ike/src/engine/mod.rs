//! The engine: routes datagrams to IKE SAs by cookie, starts exchanges for acquires, runs
//! timers, and hands out what to send and what happened, the way quinn-proto's `Endpoint`
//! routes to its connections (`endpoint`). Its other jobs sit beside it, each an `impl
//! Engine` of its own: responder admission (`responder`) into the half-open table, admitted
//! by memory (`half_open`), what an INITIAL-CONTACT clears (`initial_contact`), lifetimes
//! across IKE SAs (`lifetimes`), answers to peers that use SAs we lost (`recovery`), operator
//! commands (`commands`) and configuration reload
//! (`reconfigure`). Only declarations live here, so the children never import this file.

pub(crate) mod census;
mod commands;
pub(crate) mod endpoint;
mod half_open;
mod initial_contact;
mod lifetimes;
mod reconfigure;
mod recovery;
mod responder;
pub(crate) mod views;
