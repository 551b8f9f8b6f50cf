//! Emulator throughput over loopback with the real SDK: `cargo bench --bench emulator`.
//!
//! For GetRoom (a read) and CreateRoom (a write that grows the store) at several concurrency levels, a fixed
//! number of requests is sent through one SDK client (one connection pool, as an operator would have) by N
//! concurrent workers, after a warm-up. Prints requests per second and latency percentiles as a table. Each
//! measurement stops early at a time bound, so a slow machine cannot make the run unbounded; a cut-short row
//! says so. Quotas, faults and latency injection are off: this measures the emulator itself (HTTP, SigV4
//! verification, JSON, the store) plus the SDK's own cost on the client side.
//!
//! Then message review: SEND_MESSAGE to the echoed MESSAGE over the messaging WebSocket, in rooms without a
//! review handler and in rooms whose handler is a real Lambda function (Python under the Lambda RIE, warm), by
//! one sender at a time and by several at once (the emulator sends an endpoint one invocation at a time).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use aws_sdk_ivschat::Client;
use aws_sdk_ivschat::types::{ChatTokenCapability, FallbackResult, MessageReviewHandler};
use ivschat_emulator::{Emulator, EmulatorConfig};
use ivschat_testsupport::lambda::LambdaFunction;
use ivschat_testsupport::messaging::{Socket, next_entity, send, send_message, try_connect};

const CONCURRENCY_LEVELS: [usize; 4] = [1, 4, 16, 64];
const WARM_UP_REQUESTS: usize = 200;
/// Requests per measurement, per operation.
const GET_ROOM_REQUESTS: usize = 4000;
const CREATE_ROOM_REQUESTS: usize = 2000;
/// A measurement stops issuing requests after this long, whatever it has done.
const TIME_BOUND: Duration = Duration::from_secs(20);

#[derive(Clone, Copy, Debug)]
enum Operation {
    GetRoom,
    CreateRoom,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Operation::GetRoom => "GetRoom",
            Operation::CreateRoom => "CreateRoom",
        }
    }

    fn requests(self) -> usize {
        match self {
            Operation::GetRoom => GET_ROOM_REQUESTS,
            Operation::CreateRoom => CREATE_ROOM_REQUESTS,
        }
    }

    async fn call(self, client: &Client, room_arn: &str) -> anyhow::Result<()> {
        match self {
            Operation::GetRoom => {
                client
                    .get_room()
                    .identifier(room_arn)
                    .send()
                    .await
                    .context("GetRoom")?;
            }
            Operation::CreateRoom => {
                client
                    .create_room()
                    .name("bench-room")
                    .tags("bench", "true")
                    .send()
                    .await
                    .context("CreateRoom")?;
            }
        }
        Ok(())
    }
}

struct Measurement {
    completed: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    cut_short: bool,
}

impl Measurement {
    /// What `latencies` (in any order) say, gathered in `elapsed` out of `requested` requests.
    fn new(mut latencies: Vec<Duration>, elapsed: Duration, requested: usize) -> Measurement {
        latencies.sort_unstable();
        Measurement {
            completed: latencies.len(),
            elapsed,
            cut_short: latencies.len() < requested,
            latencies,
        }
    }

    fn requests_per_second(&self) -> f64 {
        self.completed as f64 / self.elapsed.as_secs_f64()
    }

    /// The latency below which `percent` of the requests finished.
    fn percentile(&self, percent: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((percent / 100.0) * (self.latencies.len() - 1) as f64).round() as usize;
        self.latencies[rank.min(self.latencies.len() - 1)]
    }
}

/// `requests` calls of `operation` by `concurrency` workers sharing `client`.
async fn measure(
    client: &Client,
    room_arn: &Arc<str>,
    operation: Operation,
    concurrency: usize,
    requests: usize,
) -> anyhow::Result<Measurement> {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + TIME_BOUND;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let client = client.clone();
        let room_arn = Arc::clone(room_arn);
        let next = Arc::clone(&next);
        workers.spawn(async move {
            let mut latencies = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < requests && Instant::now() < deadline {
                let sent = Instant::now();
                operation.call(&client, &room_arn).await?;
                latencies.push(sent.elapsed());
            }
            anyhow::Ok(latencies)
        });
    }
    let mut latencies = Vec::with_capacity(requests);
    while let Some(joined) = workers.join_next().await {
        latencies.extend(joined.context("a benchmark worker panicked")??);
    }
    Ok(Measurement::new(latencies, start.elapsed(), requests))
}

fn milliseconds(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

async fn run() -> anyhow::Result<()> {
    let emulator = Emulator::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        EmulatorConfig::default(),
    )
    .await
    .context("start the emulator")?;
    // No retries: a failed request must fail the benchmark, not hide in its timings.
    let client = emulator.sdk_client_without_retries();
    let room = client
        .create_room()
        .name("bench-target")
        .send()
        .await
        .context("create the room GetRoom reads")?;
    let room_arn: Arc<str> = Arc::from(room.arn().context("CreateRoom returned no arn")?);

    measure(&client, &room_arn, Operation::GetRoom, 4, WARM_UP_REQUESTS).await?;

    println!(
        "emulator over loopback, aws-sdk-ivschat client, {} worker threads",
        std::thread::available_parallelism().map_or(0, |threads| threads.get())
    );
    println!(
        "{:<11} {:>11} {:>9} {:>9} {:>10} {:>9} {:>9} {:>9}",
        "operation", "concurrency", "requests", "seconds", "req/s", "p50 ms", "p99 ms", "max ms"
    );
    for operation in [Operation::GetRoom, Operation::CreateRoom] {
        for concurrency in CONCURRENCY_LEVELS {
            let result = measure(
                &client,
                &room_arn,
                operation,
                concurrency,
                operation.requests(),
            )
            .await?;
            println!(
                "{:<11} {:>11} {:>9} {:>9.2} {:>10.0} {:>9.2} {:>9.2} {:>9.2}{}",
                operation.name(),
                concurrency,
                result.completed,
                result.elapsed.as_secs_f64(),
                result.requests_per_second(),
                milliseconds(result.percentile(50.0)),
                milliseconds(result.percentile(99.0)),
                milliseconds(result.percentile(100.0)),
                if result.cut_short {
                    format!("  (cut short at {TIME_BOUND:?})")
                } else {
                    String::new()
                }
            );
        }
    }
    let rooms = emulator.request_count("CreateRoom", "success");
    println!("({rooms} rooms in the store at the end)");
    emulator.stop().await.context("stop the emulator")?;
    review_latency().await
}

/// Messages per review measurement, over all senders.
const REVIEW_MESSAGES: usize = 500;
/// Rooms per measurement, 10 messages each: a room accepts at most 100 messages in any second, which one
/// fast sender would exceed in a single room.
const REVIEW_ROOMS: usize = 50;
/// Senders at once in the concurrent measurement (each with a tenth of the rooms).
const REVIEW_SENDERS: usize = 5;

/// SEND_MESSAGE → echo latency without a handler, and with a real handler by one and by several senders.
async fn review_latency() -> anyhow::Result<()> {
    let function = LambdaFunction::start(
        "def handler(event, context):\n    return {\"ReviewResult\": \"ALLOW\", \"Content\": event[\"Content\"] + \"!\"}\n",
    )
    .await;
    let mut config = EmulatorConfig::default();
    config.lambda.endpoint = Some(function.endpoint());
    let emulator = Emulator::start(SocketAddr::from(([127, 0, 0, 1], 0)), config)
        .await
        .context("start the emulator")?;
    println!();
    println!(
        "message review: SEND_MESSAGE to its MESSAGE echo over the messaging WebSocket, {REVIEW_MESSAGES} messages"
    );
    println!(
        "{:<32} {:>7} {:>9} {:>9} {:>9} {:>9}",
        "rooms", "senders", "msg/s", "p50 ms", "p99 ms", "max ms"
    );
    for (label, handler, senders) in [
        ("no review handler", false, 1),
        ("handler: Python under the RIE", true, 1),
        ("handler: Python under the RIE", true, REVIEW_SENDERS),
    ] {
        let mut sockets = Vec::new();
        for _ in 0..REVIEW_ROOMS {
            sockets.push(review_room(&emulator, handler).await?);
        }
        // Warm-up in a room of its own: the runtime's first invocation includes its start.
        let mut warm = [review_room(&emulator, handler).await?];
        send_and_time(&mut warm, 5).await;
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        let per_sender = REVIEW_ROOMS / senders;
        while !sockets.is_empty() {
            let mut group: Vec<Socket> = sockets.drain(..per_sender.min(sockets.len())).collect();
            let messages = group.len() * REVIEW_MESSAGES / REVIEW_ROOMS;
            tasks.spawn(async move { send_and_time(&mut group, messages).await });
        }
        let mut latencies = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            latencies.extend(joined.context("a sender panicked")?);
        }
        let result = Measurement::new(latencies, start.elapsed(), REVIEW_MESSAGES);
        println!(
            "{:<32} {:>7} {:>9.0} {:>9.2} {:>9.2} {:>9.2}",
            label,
            senders,
            result.requests_per_second(),
            milliseconds(result.percentile(50.0)),
            milliseconds(result.percentile(99.0)),
            milliseconds(result.percentile(100.0)),
        );
    }
    println!(
        "(reviews by outcome and result: {:?})",
        emulator.review_counts()
    );
    emulator.stop().await.context("stop the emulator")
}

/// A room (at the highest message rate AWS allows) and a connection of a sender to it.
async fn review_room(emulator: &Emulator, handler: bool) -> anyhow::Result<Socket> {
    let client = emulator.sdk_client_without_retries();
    let mut create = client.create_room().maximum_message_rate_per_second(100);
    if handler {
        create = create.message_review_handler(
            MessageReviewHandler::builder()
                .uri("arn:aws:lambda:us-west-2:123456789012:function:bench")
                .fallback_result(FallbackResult::Deny)
                .build(),
        );
    }
    let room = create.send().await.context("create a room")?;
    let token = client
        .create_chat_token()
        .room_identifier(room.arn().context("no arn")?)
        .user_id("sender")
        .capabilities(ChatTokenCapability::SendMessage)
        .send()
        .await
        .context("create a chat token")?;
    try_connect(&emulator.messaging_url(), token.token())
        .await
        .context("connect")
}

/// `messages` messages, round-robin over `sockets`, one outstanding at a time; each must be delivered. Their
/// latencies, in sending order.
async fn send_and_time(sockets: &mut [Socket], messages: usize) -> Vec<Duration> {
    let mut latencies = Vec::with_capacity(messages);
    for index in 0..messages {
        let socket = &mut sockets[index % sockets.len()];
        let sent = Instant::now();
        send(socket, send_message(&index.to_string(), "hello")).await;
        let echo = next_entity(socket).await;
        assert_eq!(
            echo["Type"], "MESSAGE",
            "a benchmark message was refused: {echo}"
        );
        latencies.push(sent.elapsed());
    }
    latencies
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("build the tokio runtime")?;
    runtime.block_on(run())
}
