//! The admin HTTP listener: `/metrics` (Prometheus text format) and `/health`; in the
//! benchmark build also `/bench` (docs/benchmarks.md). Bound to loopback by default: metrics
//! describe players and traffic, not for the world to read.

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
    #[cfg(feature = "bench")] bench: Arc<crate::bench::BenchShared>,
) -> Result<SocketAddr, String> {
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(address))
        .map_err(|e| format!("Admin.Address: cannot listen on {address}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let app = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/health", get(health))
        .with_state(AdminState { metrics, current_tick });
    #[cfg(feature = "bench")]
    let app = app.merge(bench_routes(bench));
    runtime.spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("admin listener stopped: {e}");
        }
    });
    tracing::info!("metrics at http://{local}/metrics, health at http://{local}/health");
    #[cfg(feature = "bench")]
    tracing::info!("benchmark build: figures at http://{local}/bench, reset with POST /bench/reset");
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

/// `GET /bench` (`?reset=1` to start a new window after reading), `POST /bench/reset`: the
/// benchmark build's figures as JSON; a reset answers with the figures of the window it ends.
#[cfg(feature = "bench")]
fn bench_routes(bench: Arc<crate::bench::BenchShared>) -> Router {
    use axum::{http::Uri, routing::post};
    let json = |value: serde_json::Value| ([(header::CONTENT_TYPE, "application/json")], format!("{value:#}\n"));
    Router::new()
        .route(
            "/bench",
            get(move |State(bench): State<Arc<crate::bench::BenchShared>>, uri: Uri| async move {
                let reset =
                    uri.query().unwrap_or_default().split('&').any(|p| matches!(p, "reset" | "reset=1" | "reset=true"));
                json(bench.report(reset))
            }),
        )
        .route(
            "/bench/reset",
            post(move |State(bench): State<Arc<crate::bench::BenchShared>>| async move { json(bench.report(true)) }),
        )
        .with_state(bench)
}
