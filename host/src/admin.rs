//! The admin HTTP listener: `/metrics` (Prometheus text format) and `/health`. Bound to
//! loopback by default: metrics describe players and traffic, not for the world to read.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use axum::{Router, extract::State, http::header, response::IntoResponse, routing::get};

use crate::metrics::Metrics;

#[derive(Clone)]
struct AdminState {
    metrics: Arc<Metrics>,
    current_tick: Arc<AtomicU64>,
}

/// Binds the listener (on the network runtime); returns the bound address.
pub fn start(
    runtime: &tokio::runtime::Runtime,
    address: &str,
    metrics: Arc<Metrics>,
    current_tick: Arc<AtomicU64>,
) -> Result<SocketAddr, String> {
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(address))
        .map_err(|e| format!("Admin.Address: cannot listen on {address}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let app = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/health", get(health))
        .with_state(AdminState { metrics, current_tick });
    runtime.spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("admin listener stopped: {e}");
        }
    });
    tracing::info!("metrics at http://{local}/metrics, health at http://{local}/health");
    Ok(local)
}

async fn metrics_text(State(state): State<AdminState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.render())
}

async fn health(State(state): State<AdminState>) -> impl IntoResponse {
    let body = format!(
        "{{\"status\":\"ok\",\"tick\":{},\"players\":{}}}\n",
        state.current_tick.load(Ordering::Relaxed),
        state.metrics.players_online.get()
    );
    ([(header::CONTENT_TYPE, "application/json")], body)
}
