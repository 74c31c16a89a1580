//! Why a connection ended and why a client's message was dropped: each reason with its label,
//! the `reason` of `veltrix_disconnects_total` and `veltrix_messages_dropped_total`
//! (docs/configuration.md lists them) and the word the logs use.

use std::fmt;

use veltrix_sdk::protocol::ErrorCode;

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Disconnect {
    /// The WebSocket opening failed or timed out.
    UpgradeFailed,
    /// A plain HTTP request, answered and closed.
    NotAWebsocket,
    TooManyConnections,
    HandshakeTimeout,
    ClosedDuringHandshake,
    ProtocolVersion,
    BadCredentials,
    TokenExpired,
    HandshakeRequired,
    UnknownMessage,
    Malformed,
    FrameTooLarge,
    ProtocolViolation,
    /// Any other failure of the WebSocket transport.
    ProtocolError,
    TooManyErrors,
    IdleTimeout,
    SlowConsumer,
    WriteError,
    ClosedByClient,
    /// The tick thread let go of the connection without closing it.
    Removed,
    ServerStopping,
    Kicked,
    Banned,
    Replaced,
    ServerFull,
    NameTaken,
    SavedStateUnreadable,
    /// Closed by the server with any other code.
    ClosedByServer,
}

impl Disconnect {
    /// The metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Disconnect::UpgradeFailed => "upgrade_failed",
            Disconnect::NotAWebsocket => "not_a_websocket",
            Disconnect::TooManyConnections => "too_many_connections",
            Disconnect::HandshakeTimeout => "handshake_timeout",
            Disconnect::ClosedDuringHandshake => "closed_during_handshake",
            Disconnect::ProtocolVersion => "protocol_version",
            Disconnect::BadCredentials => "bad_credentials",
            Disconnect::TokenExpired => "token_expired",
            Disconnect::HandshakeRequired => "handshake_required",
            Disconnect::UnknownMessage => "unknown_message",
            Disconnect::Malformed => "malformed",
            Disconnect::FrameTooLarge => "frame_too_large",
            Disconnect::ProtocolViolation => "protocol_violation",
            Disconnect::ProtocolError => "protocol_error",
            Disconnect::TooManyErrors => "too_many_errors",
            Disconnect::IdleTimeout => "idle_timeout",
            Disconnect::SlowConsumer => "slow_consumer",
            Disconnect::WriteError => "write_error",
            Disconnect::ClosedByClient => "closed_by_client",
            Disconnect::Removed => "removed",
            Disconnect::ServerStopping => "server_stopping",
            Disconnect::Kicked => "kicked",
            Disconnect::Banned => "banned",
            Disconnect::Replaced => "replaced",
            Disconnect::ServerFull => "server_full",
            Disconnect::NameTaken => "name_taken",
            Disconnect::SavedStateUnreadable => "saved_state_unreadable",
            Disconnect::ClosedByServer => "closed_by_server",
        }
    }

    /// Why a connection the server closed with `code` ended.
    pub fn closed_with(code: ErrorCode) -> Self {
        match code {
            ErrorCode::Kicked => Disconnect::Kicked,
            ErrorCode::Banned => Disconnect::Banned,
            ErrorCode::Replaced => Disconnect::Replaced,
            ErrorCode::ServerFull => Disconnect::ServerFull,
            ErrorCode::NameTaken => Disconnect::NameTaken,
            ErrorCode::SlowConsumer => Disconnect::SlowConsumer,
            ErrorCode::ServerStopping => Disconnect::ServerStopping,
            ErrorCode::SavedStateUnreadable => Disconnect::SavedStateUnreadable,
            _ => Disconnect::ClosedByServer,
        }
    }

    /// Why a handshake refused with `code` ended.
    pub fn refused_with(code: ErrorCode) -> Self {
        match code {
            ErrorCode::ProtocolVersion => Disconnect::ProtocolVersion,
            ErrorCode::BadCredentials => Disconnect::BadCredentials,
            ErrorCode::HandshakeRequired => Disconnect::HandshakeRequired,
            ErrorCode::UnknownMessage => Disconnect::UnknownMessage,
            _ => Disconnect::Malformed,
        }
    }
}

impl fmt::Display for Disconnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Why a client's message was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dropped {
    /// Over `Network.MaxMessagesPerSecond`.
    RateLimited,
    /// A frame that does not decode.
    Malformed,
    /// A message of a kind the server does not know.
    UnknownMessage,
}

impl Dropped {
    /// The metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Dropped::RateLimited => "rate_limited",
            Dropped::Malformed => "malformed",
            Dropped::UnknownMessage => "unknown_message",
        }
    }
}

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The labels are the metrics' label values: dashboards and alerts name them, so they never
    /// change with the code.
    #[test]
    fn labels_are_the_metrics_label_values() {
        use Disconnect as D;
        let all = [
            (D::UpgradeFailed, "upgrade_failed"),
            (D::NotAWebsocket, "not_a_websocket"),
            (D::TooManyConnections, "too_many_connections"),
            (D::HandshakeTimeout, "handshake_timeout"),
            (D::ClosedDuringHandshake, "closed_during_handshake"),
            (D::ProtocolVersion, "protocol_version"),
            (D::BadCredentials, "bad_credentials"),
            (D::TokenExpired, "token_expired"),
            (D::HandshakeRequired, "handshake_required"),
            (D::UnknownMessage, "unknown_message"),
            (D::Malformed, "malformed"),
            (D::FrameTooLarge, "frame_too_large"),
            (D::ProtocolViolation, "protocol_violation"),
            (D::ProtocolError, "protocol_error"),
            (D::TooManyErrors, "too_many_errors"),
            (D::IdleTimeout, "idle_timeout"),
            (D::SlowConsumer, "slow_consumer"),
            (D::WriteError, "write_error"),
            (D::ClosedByClient, "closed_by_client"),
            (D::Removed, "removed"),
            (D::ServerStopping, "server_stopping"),
            (D::Kicked, "kicked"),
            (D::Banned, "banned"),
            (D::Replaced, "replaced"),
            (D::ServerFull, "server_full"),
            (D::NameTaken, "name_taken"),
            (D::SavedStateUnreadable, "saved_state_unreadable"),
            (D::ClosedByServer, "closed_by_server"),
        ];
        for (reason, label) in all {
            assert_eq!(reason.label(), label);
            assert_eq!(reason.to_string(), label, "logs say the label");
        }
        assert_eq!(Disconnect::closed_with(ErrorCode::Kicked), D::Kicked);
        assert_eq!(Disconnect::closed_with(ErrorCode::IdleTimeout), D::ClosedByServer);
        assert_eq!(Disconnect::refused_with(ErrorCode::ProtocolVersion), D::ProtocolVersion);
        assert_eq!(Disconnect::refused_with(ErrorCode::TooManyErrors), D::Malformed);
        for (reason, label) in [
            (Dropped::RateLimited, "rate_limited"),
            (Dropped::Malformed, "malformed"),
            (Dropped::UnknownMessage, "unknown_message"),
        ] {
            assert_eq!(reason.label(), label);
        }
    }
}
