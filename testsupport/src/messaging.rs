//! WebSocket clients of the emulator's chat Messaging API, connecting the way the IVS JS client does.

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long an entity may take to arrive: far above a delivery on loopback.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long nothing must arrive for "nothing was delivered".
pub const QUIET_PERIOD: Duration = Duration::from_millis(300);

/// Opens a connection the way the JS client does: the token as the only subprotocol. The server must echo it.
pub async fn try_connect(url: &str, token: Option<&str>) -> Result<Socket, WsError> {
    let mut request = url.into_client_request()?;
    if let Some(token) = token {
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_str(token).expect("token is a header value"),
        );
    }
    let (socket, response) = tokio_tungstenite::connect_async(request).await?;
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(
        response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|value| value.to_str().ok()),
        token,
        "the token is echoed as the selected subprotocol"
    );
    Ok(socket)
}

/// Sends one request entity as a text frame.
pub async fn send(socket: &mut Socket, request: Value) {
    socket
        .send(Message::text(request.to_string()))
        .await
        .expect("send a frame");
}

/// A `SEND_MESSAGE` request.
pub fn send_message(request_id: &str, content: &str) -> Value {
    json!({"Action": "SEND_MESSAGE", "RequestId": request_id, "Content": content})
}

/// The next JSON entity from the server (control frames skipped).
pub async fn next_entity(socket: &mut Socket) -> Value {
    loop {
        let frame = tokio::time::timeout(DELIVERY_TIMEOUT, socket.next())
            .await
            .expect("an entity arrives in time")
            .expect("the connection is open")
            .expect("a valid frame");
        match frame {
            Message::Text(text) => {
                return serde_json::from_str(text.as_str()).expect("entities are JSON");
            }
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a text entity, got {other:?}"),
        }
    }
}

/// Nothing arrives within the quiet period.
pub async fn expect_quiet(socket: &mut Socket) {
    if let Ok(frame) = tokio::time::timeout(QUIET_PERIOD, socket.next()).await {
        panic!("expected nothing, got {frame:?}");
    }
}
