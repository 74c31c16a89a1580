//! The admin HTTP listener: `/metrics` (Prometheus text format) and `/health`; in the
//! benchmark build also `/bench` (docs/benchmarks.md). Bound to loopback by default: metrics
//! describe players and traffic, not for the world to read.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    Router,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use parking_lot::Mutex;

use crate::metrics::Metrics;

/// A tick that has not moved on for this long is stalled: far beyond any tick's budget or
/// catch-up, short enough for an orchestrator to restart the server within a minute.
const STALLED_AFTER: Duration = Duration::from_secs(10);

#[derive(Clone)]
struct AdminState {
    metrics: Arc<Metrics>,
    current_tick: Arc<AtomicU64>,
    /// The tick `/health` last saw, and when it first saw it.
    last_seen: Arc<Mutex<(u64, Instant)>>,
}

/// What `/health` says of the tick loop.
#[derive(Debug, PartialEq, Eq)]
enum Status {
    /// No tick has run yet (mods loading, the world being built).
    Starting,
    Ok,
    /// The tick has not moved on for [`STALLED_AFTER`].
    Stalled,
}

impl Status {
    /// Judges `tick` at `now`, against what was seen before (updated when the tick moved on).
    fn of(tick: u64, last_seen: &mut (u64, Instant), now: Instant) -> Self {
        if tick != last_seen.0 {
            *last_seen = (tick, now);
        }
        match tick {
            0 => Status::Starting,
            _ if now.duration_since(last_seen.1) >= STALLED_AFTER => Status::Stalled,
            _ => Status::Ok,
        }
    }

    fn word(&self) -> &'static str {
        match self {
            Status::Starting => "starting",
            Status::Ok => "ok",
            Status::Stalled => "stalled",
        }
    }
}

/// Binds the listener (on the async runtime); returns the bound address.
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
    let app = Router::new().route("/metrics", get(metrics_text)).route("/health", get(health)).with_state(AdminState {
        metrics,
        current_tick,
        last_seen: Arc::new(Mutex::new((0, Instant::now()))),
    });
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

/// `{"status", "tick", "players"}`: 200 with status `ok` while the ticks move on; 503 with
/// `starting` before the first tick and `stalled` once the tick has not moved on for
/// [`STALLED_AFTER`] (seen over two requests at least that far apart).
async fn health(State(state): State<AdminState>) -> impl IntoResponse {
    let tick = state.current_tick.load(Ordering::Relaxed);
    let status = Status::of(tick, &mut state.last_seen.lock(), Instant::now());
    let code = if status == Status::Ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = format!(
        "{{\"status\":\"{}\",\"tick\":{tick},\"players\":{}}}\n",
        status.word(),
        state.metrics.players_online.get()
    );
    (code, [(header::CONTENT_TYPE, "application/json")], body)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Before the first tick: starting. While the tick moves on: ok, however far apart the
    /// requests. The same tick seen again 10 s after it was first seen: stalled, until it
    /// moves on.
    #[test]
    fn health_follows_the_tick() {
        let start = Instant::now();
        let at = |seconds: u64| start + Duration::from_secs(seconds);
        let mut seen = (0, start);
        assert_eq!(Status::of(0, &mut seen, at(0)), Status::Starting);
        assert_eq!(Status::of(0, &mut seen, at(20)), Status::Starting);
        assert_eq!(Status::of(5, &mut seen, at(21)), Status::Ok);
        assert_eq!(Status::of(300, &mut seen, at(31)), Status::Ok);
        assert_eq!(Status::of(300, &mut seen, at(35)), Status::Ok);
        assert_eq!(Status::of(300, &mut seen, at(41)), Status::Stalled);
        assert_eq!(Status::of(301, &mut seen, at(42)), Status::Ok);
    }
}
