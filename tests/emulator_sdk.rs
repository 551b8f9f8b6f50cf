//! Acceptance tests of the emulator through the real `aws-sdk-ivschat` over HTTP.

use ivschat_operator::emulator::{Emulator, EmulatorConfig};

async fn start() -> Emulator {
    Emulator::start(
        "127.0.0.1:0".parse().expect("addr"),
        EmulatorConfig::default(),
    )
    .await
    .expect("emulator starts")
}

#[tokio::test]
async fn smoke() {
    let emulator = start().await;
    let client = emulator.sdk_client();
    let room = client
        .create_room()
        .name("r1")
        .send()
        .await
        .expect("create room");
    let got = client
        .get_room()
        .identifier(room.arn().expect("arn"))
        .send()
        .await
        .expect("get");
    assert_eq!(got.name(), Some("r1"));
    client
        .delete_room()
        .identifier(room.arn().expect("arn"))
        .send()
        .await
        .expect("delete");
    emulator.stop().await.expect("stop");
}
