//! Benchmark of the timer service: 100,000 pending deadlines.
//!
//! `cargo run --release -p wallyt-pay-actors --example expiry_bench`
//!
//! Measures (1) the heap the deadline queue holds for 100,000 deadlines, counted by a global
//! allocator, (2) how fast they are scheduled through the actor's mailbox, and (3) wake-up
//! precision: with all of them due within a few seconds, how late each one is handed on
//! (percentiles of fire time − deadline).

use actix::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System as SystemAlloc};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wallyt_pay_actors::engine::expiry_scheduler::{
    AttachSink, DeadlineDue, ExpiryScheduler, Schedule,
};
use wallyt_pay_actors::expiry::{Deadline, DeadlineKey, DeadlineKind, DeadlineQueue};
use wallyt_pay_actors::{Clock, SystemClock, UnixMillis};

struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { SystemAlloc.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { SystemAlloc.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const DEADLINES: i64 = 100_000;

fn deadline(order_id: i64, at: i64) -> Deadline {
    Deadline {
        key: DeadlineKey {
            order_id,
            kind: DeadlineKind::PrepayExpiry {
                payment_id: order_id,
            },
        },
        at: UnixMillis(at),
        attempt: 0,
    }
}

struct Collect {
    lateness_ms: Arc<Mutex<Vec<i64>>>,
    done: Arc<AtomicUsize>,
}

impl Actor for Collect {
    type Context = Context<Self>;
}

impl Handler<DeadlineDue> for Collect {
    type Result = ();

    fn handle(&mut self, DeadlineDue(d): DeadlineDue, _: &mut Context<Self>) {
        let late = SystemClock.now().0 - d.at.0;
        self.lateness_ms.lock().unwrap().push(late);
        self.done.fetch_add(1, Ordering::Relaxed);
    }
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    // 1. Memory of the queue alone.
    let before = LIVE_BYTES.load(Ordering::Relaxed);
    let mut queue = DeadlineQueue::new();
    let now = SystemClock.now().0;
    for id in 0..DEADLINES {
        queue.insert(deadline(id, now + 60_000 + (id * 7919) % 3_600_000));
    }
    let bytes = LIVE_BYTES.load(Ordering::Relaxed) - before;
    println!(
        "queue: {DEADLINES} deadlines hold {:.1} MiB ({} bytes each)",
        bytes as f64 / (1024.0 * 1024.0),
        bytes / DEADLINES as isize
    );
    let started = Instant::now();
    let popped = queue.pop_due(UnixMillis(i64::MAX)).len();
    println!(
        "queue: popping all {popped} in order took {:?}",
        started.elapsed()
    );

    // 2 and 3. Through the actor: schedule 100,000 due within 1..5 s, measure lateness.
    let system = actix::System::new();
    system.block_on(async {
        let lateness = Arc::new(Mutex::new(Vec::with_capacity(DEADLINES as usize)));
        let done = Arc::new(AtomicUsize::new(0));
        let pending = Arc::new(AtomicUsize::new(0));
        let scheduler = ExpiryScheduler::new(None, Arc::new(SystemClock), Duration::from_secs(3600), pending.clone()).start();
        let sink = Collect { lateness_ms: lateness.clone(), done: done.clone() }.start();
        scheduler.send(AttachSink(sink.recipient())).await.unwrap();
        let base = SystemClock.now().0 + 1_000;
        let started = Instant::now();
        for id in 0..DEADLINES {
            scheduler.send(Schedule(deadline(id, base + (id * 7919) % 4_000))).await.unwrap();
        }
        let scheduling = started.elapsed();
        println!(
            "actor: scheduled {DEADLINES} in {scheduling:?} ({:.0}/s), {} pending",
            DEADLINES as f64 / scheduling.as_secs_f64(),
            pending.load(Ordering::Relaxed)
        );
        while done.load(Ordering::Relaxed) < DEADLINES as usize {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut late = lateness.lock().unwrap().clone();
        late.sort_unstable();
        println!(
            "actor: wake-up lateness over {} deadlines: p50 {} ms, p99 {} ms, p99.9 {} ms, max {} ms, min {} ms",
            late.len(),
            percentile(&late, 0.5),
            percentile(&late, 0.99),
            percentile(&late, 0.999),
            late.last().unwrap(),
            late.first().unwrap()
        );
    });
}
