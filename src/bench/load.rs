//! Load drivers: each keeps a number of requests in flight on each
//! connection until the budget runs out, and records every request's
//! latency, from just before its bytes are queued to the decoded response.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::{Bytes, BytesMut};
use hdrhistogram::Histogram;
use prost::Message as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::task::JoinSet;
use tonic::transport::Channel;

use crate::frame::{self, DEFAULT_MAX_FRAME_BYTES, Kind};
use crate::proto::DecideRequest;
use crate::proto::router_client::RouterClient;

/// Largest latency recorded: one minute, in nanoseconds.
const MAX_LATENCY_NANOS: u64 = 60_000_000_000;

/// How many requests a measurement may send: a count, or until a time.
pub enum Budget {
    Requests(AtomicU64),
    Until(Instant),
}

impl Budget {
    pub fn requests(count: u64) -> Arc<Self> {
        Arc::new(Budget::Requests(AtomicU64::new(count)))
    }

    pub fn seconds(duration: Duration) -> Arc<Self> {
        Arc::new(Budget::Until(Instant::now() + duration))
    }

    /// Takes one request from the budget; false when it is spent.
    fn take(&self) -> bool {
        match self {
            Budget::Requests(left) => left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok(),
            Budget::Until(end) => Instant::now() < *end,
        }
    }
}

/// The shape of a measurement's load.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub connections: usize,
    pub in_flight: usize,
}

/// Latencies and counts from one measurement.
pub struct Sample {
    pub latency: Histogram<u64>,
    pub errors: u64,
    pub elapsed: Duration,
}

impl Sample {
    fn empty() -> anyhow::Result<Self> {
        Ok(Sample {
            latency: histogram()?,
            errors: 0,
            elapsed: Duration::ZERO,
        })
    }

    fn merge(&mut self, other: &Sample) -> anyhow::Result<()> {
        self.latency.add(&other.latency)?;
        self.errors += other.errors;
        Ok(())
    }
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, MAX_LATENCY_NANOS, 3).context("cannot create a histogram")
}

fn record(latency: &mut Histogram<u64>, started: Instant) {
    let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(MAX_LATENCY_NANOS);
    latency.saturating_record(nanos.clamp(1, MAX_LATENCY_NANOS));
}

/// Calls `decide` on this thread for each request in the budget.
pub fn in_process(
    decide: impl Fn(&DecideRequest) -> bool,
    requests: &[DecideRequest],
    budget: &Budget,
) -> anyhow::Result<Sample> {
    let mut sample = Sample::empty()?;
    let started = Instant::now();
    let mut index = 0;
    while budget.take() {
        let request = &requests[index % requests.len()];
        let call = Instant::now();
        let ok = decide(request);
        record(&mut sample.latency, call);
        sample.errors += u64::from(!ok);
        index += 1;
    }
    sample.elapsed = started.elapsed();
    Ok(sample)
}

/// Drives the frame protocol on `shape.connections` connections to `path`.
/// `payloads` are encoded `DecideRequest`s.
pub async fn frames(
    path: &Path,
    payloads: Arc<[Bytes]>,
    shape: Shape,
    budget: Arc<Budget>,
) -> anyhow::Result<Sample> {
    let mut tasks = JoinSet::new();
    let started = Instant::now();
    for connection in 0..shape.connections {
        let stream = UnixStream::connect(path)
            .await
            .with_context(|| format!("cannot connect to {}", path.display()))?;
        let driver = FrameDriver {
            payloads: payloads.clone(),
            next: connection * 7,
            sent: VecDeque::with_capacity(shape.in_flight),
            output: BytesMut::with_capacity(8 * 1024),
            sample: Sample::empty()?,
        };
        tasks.spawn(driver.run(stream, shape.in_flight, budget.clone()));
    }
    join(tasks, started).await
}

async fn join(
    mut tasks: JoinSet<anyhow::Result<Sample>>,
    started: Instant,
) -> anyhow::Result<Sample> {
    let mut total = Sample::empty()?;
    while let Some(result) = tasks.join_next().await {
        total.merge(&result??)?;
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

/// One frame connection with up to `in_flight` requests outstanding.
/// Responses come back in order, so send times wait in a queue.
struct FrameDriver {
    payloads: Arc<[Bytes]>,
    next: usize,
    sent: VecDeque<Instant>,
    output: BytesMut,
    sample: Sample,
}

impl FrameDriver {
    async fn run(
        mut self,
        mut stream: UnixStream,
        in_flight: usize,
        budget: Arc<Budget>,
    ) -> anyhow::Result<Sample> {
        let mut input = BytesMut::with_capacity(8 * 1024);
        for _ in 0..in_flight {
            if budget.take() {
                self.queue_request()?;
            }
        }
        while !self.sent.is_empty() {
            stream.write_all(&self.output).await?;
            self.output.clear();
            if stream.read_buf(&mut input).await? == 0 {
                anyhow::bail!("the server closed a frame connection");
            }
            while let Some(answer) = frame::decode(&mut input, DEFAULT_MAX_FRAME_BYTES)? {
                let started = self
                    .sent
                    .pop_front()
                    .context("the server sent a response with no request outstanding")?;
                record(&mut self.sample.latency, started);
                self.sample.errors += u64::from(answer.kind != Kind::Response);
                if budget.take() {
                    self.queue_request()?;
                }
            }
        }
        Ok(self.sample)
    }

    fn queue_request(&mut self) -> anyhow::Result<()> {
        let payload = &self.payloads[self.next % self.payloads.len()];
        self.next += 1;
        self.sent.push_back(Instant::now());
        let id = self.next as u64;
        frame::encode_payload(
            &mut self.output,
            Kind::Request,
            id,
            payload,
            DEFAULT_MAX_FRAME_BYTES,
        )?;
        Ok(())
    }
}

/// Drives gRPC with one channel (one HTTP/2 connection) per entry of
/// `channels` and `in_flight` concurrent calls on each.
pub async fn grpc(
    channels: Vec<Channel>,
    requests: Arc<[DecideRequest]>,
    in_flight: usize,
    budget: Arc<Budget>,
) -> anyhow::Result<Sample> {
    let mut tasks = JoinSet::new();
    let started = Instant::now();
    for (connection, channel) in channels.into_iter().enumerate() {
        for caller in 0..in_flight {
            let client = RouterClient::new(channel.clone());
            let first = connection * in_flight + caller;
            tasks.spawn(grpc_caller(client, requests.clone(), first, budget.clone()));
        }
    }
    join(tasks, started).await
}

async fn grpc_caller(
    mut client: RouterClient<Channel>,
    requests: Arc<[DecideRequest]>,
    mut next: usize,
    budget: Arc<Budget>,
) -> anyhow::Result<Sample> {
    let mut sample = Sample::empty()?;
    while budget.take() {
        let request = requests[next % requests.len()].clone();
        next += 1;
        let started = Instant::now();
        let answer = client.decide(request).await;
        record(&mut sample.latency, started);
        sample.errors += u64::from(answer.is_err());
    }
    Ok(sample)
}

/// Encodes each request once, for the frame driver.
pub fn payloads(requests: &[DecideRequest]) -> Arc<[Bytes]> {
    requests
        .iter()
        .map(|request| Bytes::from(request.encode_to_vec()))
        .collect()
}
