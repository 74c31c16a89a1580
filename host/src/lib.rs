//! The Veltrix dedicated server as a library: the binary `veltrix-server` is a thin `main`
//! over these modules, and the integration tests use them directly.

pub mod cli;
pub mod config;
pub mod logging;
pub mod mods;
pub mod panics;
pub mod server;
pub mod tick;
