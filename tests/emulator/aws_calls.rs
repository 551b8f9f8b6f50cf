//! The operator's AWS call discipline ([`ivschat_operator::controller::aws::Aws::call`]) against real
//! endpoints over HTTP: a silent endpoint times out instead of hanging, a connection that is reset is
//! retried and then reported as transient, and a create that got a 5xx is not sent again.

use ivschat_emulator::EmulatorConfig;
use ivschat_operator::controller::aws::{Aws, CallPolicy, Retry};
use ivschat_operator::controller::aws_error::ErrorClass;
use ivschat_testsupport::{emulator, serial};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn quick_policy() -> CallPolicy {
    CallPolicy {
        max_attempts: 3,
        base_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(50),
        attempt_timeout: Duration::from_millis(300),
        throttle_pause: Duration::from_millis(100),
    }
}

#[tokio::test]
async fn a_silent_endpoint_times_out_every_attempt_instead_of_hanging() {
    // Attempt timeouts of 300 ms: never beside a heavy test.
    let _alone = serial::alone().await;
    let emulator = emulator::start(EmulatorConfig {
        extra_latency: Duration::from_secs(5),
        ..EmulatorConfig::default()
    })
    .await;
    let aws = Aws::unlimited(emulator.sdk_client()).with_policy(quick_policy());
    let started = Instant::now();
    let err = aws
        .call("ListRooms", Retry::Idempotent, |client| {
            client.list_rooms().send()
        })
        .await
        .expect_err("the endpoint never answers in time");
    let elapsed = started.elapsed();
    assert_eq!(err.code, "Timeout", "{err}");
    assert_eq!(err.class, ErrorClass::Transient);
    // Three attempts of 300 ms and two short backoffs, nowhere near the endpoint's 5 s.
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    assert_eq!(
        emulator.request_total("ListRooms"),
        0,
        "no attempt completed"
    );

    emulator.set_extra_latency(Duration::ZERO);
    aws.call("ListRooms", Retry::Idempotent, |client| {
        client.list_rooms().send()
    })
    .await
    .expect("answers again once the endpoint is fast");
    let _ = emulator.stop().await;
}

#[tokio::test]
async fn reset_connections_are_retried_then_reported_as_transient() {
    // Attempt timeouts of 300 ms: never beside a heavy test.
    let _alone = serial::alone().await;
    // An endpoint that accepts every connection and closes it at once.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let server = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    let reference = emulator::start(EmulatorConfig::default()).await;
    let client = aws_sdk_ivschat::Client::from_conf(
        reference
            .sdk_config_builder()
            .endpoint_url(format!("http://{address}"))
            .build(),
    );
    let aws = Aws::unlimited(client).with_policy(quick_policy());
    let err = aws
        .call("GetRoom", Retry::Idempotent, |client| {
            client
                .get_room()
                .identifier("arn:aws:ivschat:us-west-2:123456789012:room/abcdefghijkl")
                .send()
        })
        .await
        .expect_err("every connection is reset");
    assert_eq!(err.class, ErrorClass::Transient, "{err}");
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        3,
        "one connection per attempt, retried up to the policy's attempts"
    );
    server.abort();
    let _ = reference.stop().await;
}

#[tokio::test]
async fn a_create_answered_with_a_5xx_is_not_sent_again_but_reads_are_retried() {
    // Attempt timeouts of 300 ms: never beside a heavy test.
    let _alone = serial::alone().await;
    let emulator = emulator::start(EmulatorConfig::default()).await;
    let aws = Aws::unlimited(emulator.sdk_client()).with_policy(quick_policy());
    // The room is made, the answer is a 500: a blind retry would make a second one.
    emulator
        .update_settings(|settings| settings.lost_response_rate = 1.0)
        .expect("settings");
    let err = aws
        .call("CreateRoom", Retry::OnlyIfNotRun, |client| {
            client.create_room().send()
        })
        .await
        .expect_err("the answer is lost");
    assert_eq!(err.class, ErrorClass::Transient);
    assert_eq!(emulator.request_total("CreateRoom"), 1, "sent once");
    emulator
        .update_settings(|settings| settings.lost_response_rate = 0.0)
        .expect("settings");
    let rooms = aws
        .call("ListRooms", Retry::Idempotent, |client| {
            client.list_rooms().send()
        })
        .await
        .expect("ListRooms");
    assert_eq!(rooms.rooms().len(), 1, "exactly one room was made");

    // Reads are retried through injected 5xx until one attempt gets through.
    emulator.set_fault_rate(0.5).expect("fault rate");
    let mut failed_attempts = 0;
    for _ in 0..10 {
        let before = emulator.request_total("GetRoom");
        aws.clone()
            .with_policy(CallPolicy {
                max_attempts: 10,
                ..quick_policy()
            })
            .call("GetRoom", Retry::Idempotent, |client| {
                client
                    .get_room()
                    .identifier(rooms.rooms()[0].arn().unwrap_or_default())
                    .send()
            })
            .await
            .expect("retried to success");
        failed_attempts += emulator.request_total("GetRoom") - before - 1;
    }
    assert!(
        failed_attempts > 0,
        "no 5xx was injected in 10 calls at 50 %"
    );
    let _ = emulator.stop().await;
}
