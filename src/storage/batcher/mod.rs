//! Group commit. A commit costs a WAL flush and a round trip whatever it carries, and with
//! many orders paid or reserved at once the database spends its time flushing. A batcher is
//! a queue of store transitions and one or more lanes: a lane takes what is queued (what
//! arrived while its last batch was committing — no timer, so a lone request waits for
//! nothing), runs it in one transaction, commits once, and only then answers every member.
//!
//! Each member is the very transition the store would run in a transaction of its own: it
//! checks its own fence and guards. A member that fails (fenced, refused, a statement error)
//! is rolled back to its savepoint alone and answered its error; the others are unaffected.
//! The stock moves the members owe (a confirmation's reservation sold) are made after the
//! last of them, summed per ticket type (`stock::settle`): the hot row is locked once per
//! batch, for one statement and the commit.
//!
//! Reservations (`POST /orders`) are not run one by one: the batch's reservations are made
//! as one set, first (`storage::reserve`), under a savepoint of their own when the batch
//! holds other members too, so a hot ticket type's row is locked and moved once per batch.
//!
//! When the batch as a whole fails before its commit is sent — a statement around the
//! members, the reservation set, the stock moves, a deadlock the database broke — nothing of
//! it was written, and every member is answered [`Outcome::Retry`]: its caller runs it again
//! in a transaction of its own, so a bad member (an order whose stock row is inconsistent, a
//! buyer the database refuses) fails alone instead of taking 63 others with it, batch after
//! batch. A commit that fails is another matter: it may have been applied (the connection
//! lost with the answer), so every member is answered the commit's error, never a retry —
//! a reservation run twice would be two orders. Nobody is answered before the batch's fate is
//! known, so every answered transition is durable.
//!
//! Lanes: a batcher may run several batches at once, each on its own connection (payments
//! on PostgreSQL, where a batch's round trips, not its flush, are the cost). Their members are
//! different orders (each order's actor sends one transition at a time), and a batch of
//! payments locks stock rows only at its end, in ticket type order, so two lanes do not wait
//! on each other in a cycle. Reservations, which lock stock rows first, get a batcher of one
//! lane of their own whenever payments have several. A late payment reviving its expired
//! order takes its stock back at once (all or nothing, a decision), and could close a cycle;
//! PostgreSQL's deadlock detection then fails one batch, whose members are retried alone.

use sqlx::{Any, Transaction};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use wallyt_pay_actors::ports::CreateOrderError;
use wallyt_pay_actors::{Order, StoreError};

mod members;
mod run;

use members::{Job, Queued, Reservations};

use super::reserve::Reservation;
use super::stock::OwedMove;
use super::Database;

pub type Tx = Transaction<'static, Any>;

/// The most members one transaction carries: bounds how long a member's locks are held
/// and how much one failed commit takes down.
pub const MAX_BATCH: usize = 64;

/// How many requests may queue before callers wait (backpressure, not a limit on batches).
const QUEUE: usize = 4096;

/// What a caller of the batcher is answered.
#[derive(Debug)]
pub enum Outcome<T, E> {
    /// Its transition's own result once the batch committed, or the commit's error.
    Done(Result<T, E>),
    /// The batch failed before its commit was sent: nothing of it was written, and the
    /// caller should run the transition alone.
    Retry(StoreError),
}

type Reply<T, E> = oneshot::Sender<Outcome<T, E>>;

/// How many batches and members were committed (for the metrics and the tests).
#[derive(Debug, Default)]
pub struct BatchStats {
    pub batches: AtomicU64,
    pub members: AtomicU64,
}

/// The handle callers submit transitions through. Cheap to clone; the lanes stop when the
/// last handle is dropped.
#[derive(Clone)]
pub struct CommitBatcher {
    queue: mpsc::Sender<Job>,
    stats: Arc<BatchStats>,
}

impl std::fmt::Debug for CommitBatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitBatcher")
            .field("stats", &self.stats)
            .finish()
    }
}

impl CommitBatcher {
    /// Starts `lanes` batching tasks on `db` (which must not itself batch), sharing one
    /// queue: while one lane commits, the next takes what has arrived meanwhile. One lane
    /// runs one batch at a time; several overlap their round trips on connections of their
    /// own (see `Database::with_group_commit` for what may share lanes).
    pub fn spawn(db: Database, lanes: usize) -> CommitBatcher {
        let (queue, jobs) = mpsc::channel(QUEUE);
        let jobs = Arc::new(tokio::sync::Mutex::new(jobs));
        let stats = Arc::new(BatchStats::default());
        for _ in 0..lanes.max(1) {
            tokio::spawn(batches(db.clone(), jobs.clone(), stats.clone()));
        }
        CommitBatcher { queue, stats }
    }

    pub fn stats(&self) -> &BatchStats {
        &self.stats
    }

    /// Runs `work` as a member of the next batch and answers its result once that batch has
    /// committed. `work` gets the batch's transaction and must hand it back; an `Err` rolls
    /// back what it wrote (and only that). The stock move it answers it owes is made after
    /// every member has run, summed with the others' (`stock::settle`).
    pub async fn run<F, Fut, T, E>(&self, work: F) -> Outcome<T, E>
    where
        F: FnOnce(Tx) -> Fut + Send + 'static,
        Fut: Future<Output = (Tx, Result<(T, Option<OwedMove>), E>)> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.send(Job::Member(Box::new(Queued { work, reply })), answer)
            .await
    }

    /// Reserves `request` with the next batch's reservations; answers once that batch has
    /// committed.
    pub(crate) async fn reserve(&self, request: Reservation) -> Outcome<Order, CreateOrderError> {
        let (reply, answer) = oneshot::channel();
        self.send(Job::Reserve(request, reply), answer).await
    }

    async fn send<T, E: From<StoreError>>(
        &self,
        job: Job,
        answer: oneshot::Receiver<Outcome<T, E>>,
    ) -> Outcome<T, E> {
        if self.queue.send(job).await.is_err() {
            let stopped = StoreError::Unavailable("group commit stopped".into());
            return Outcome::Done(Err(E::from(stopped)));
        }
        // Dropped unanswered: the transition panicked (its batch was rolled back).
        answer.await.unwrap_or_else(|_| {
            let lost = StoreError::Other("the transition panicked; nothing was written".into());
            Outcome::Done(Err(E::from(lost)))
        })
    }
}

async fn batches(
    db: Database,
    jobs: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
    stats: Arc<BatchStats>,
) {
    loop {
        let batch = {
            let mut jobs = jobs.lock().await;
            let Some(first) = jobs.recv().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match jobs.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            batch
        };
        let size = batch.len() as u64;
        let (mut requests, mut replies, mut members) = (Vec::new(), Vec::new(), Vec::new());
        for job in batch {
            match job {
                Job::Reserve(request, reply) => {
                    requests.push(request);
                    replies.push(reply);
                }
                Job::Member(member) => members.push(member),
            }
        }
        let reservations = Reservations { requests, replies };
        if run::run_batch(&db, reservations, members).await {
            stats.batches.fetch_add(1, Ordering::Relaxed);
            stats.members.fetch_add(size, Ordering::Relaxed);
        }
    }
}

/// `StoreError` is not `Clone` (it is the port's); one failure answers many members.
pub(super) trait CloneError {
    fn clone_error(&self) -> Self;
}

impl CloneError for StoreError {
    fn clone_error(&self) -> StoreError {
        match self {
            StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
            StoreError::Conflict(m) => StoreError::Conflict(m.clone()),
            StoreError::Fenced(fence) => StoreError::Fenced(*fence),
            StoreError::Other(m) => StoreError::Other(m.clone()),
        }
    }
}

impl CloneError for Result<(), StoreError> {
    fn clone_error(&self) -> Self {
        match self {
            Ok(()) => Ok(()),
            Err(error) => Err(error.clone_error()),
        }
    }
}
