//! The Veltrix dedicated server as a library: the binary `veltrix-server` is a thin `main`
//! over these modules, and the integration tests use them directly.

pub mod admin;
#[cfg(feature = "bench")]
pub mod allocations;
pub mod answers;
pub mod auth;
#[cfg(feature = "bench")]
pub mod bench;
pub mod cache;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod commit;
pub mod config;
pub mod interest;
pub mod logging;
pub mod mail;
pub mod metrics;
pub mod mods;
pub mod net;
pub mod panics;
pub mod permissions;
pub mod ready;
pub mod reasons;
pub mod server;
pub mod sessions;
pub mod stamp;
pub mod store;
pub mod terrain;
pub mod tick;
pub mod world;
