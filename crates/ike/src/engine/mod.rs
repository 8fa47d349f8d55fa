//! The engine: routes datagrams to IKE SAs by cookie, starts exchanges for acquires, runs
//! timers, and hands out what to send and what happened, the way quinn-proto's `Endpoint`
//! routes to its connections (`endpoint`). Its other jobs sit beside it, each an `impl
//! Engine` of its own: responder admission and half-open limits (`responder`), lifetimes
//! across IKE SAs (`lifetimes`), operator commands (`commands`), configuration reload
//! (`reconfigure`) and the IKE SA caps of policy templates (`hub`). Only declarations live here, so the children never import this file.

mod commands;
pub(crate) mod endpoint;
mod hub;
mod lifetimes;
mod reconfigure;
mod responder;
