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

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use sqlx::{Any, Transaction};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use wallyt_pay_actors::ports::CreateOrderError;
use wallyt_pay_actors::{Order, StoreError};

use super::reserve::{self, Reservation};
use super::stock::{self, OwedMove};
use super::{store_error, Database};

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

/// What callers queue: a reservation, or any other transition.
enum Job {
    Reserve(Reservation, Reply<Order, CreateOrderError>),
    Member(Box<dyn Member>),
}

/// A queued member: its work, and how to answer it.
trait Member: Send {
    fn run(self: Box<Self>, tx: Tx) -> BoxFuture<'static, (Tx, Box<dyn Ran>)>;
    /// Its batch failed before it ran.
    fn retry(self: Box<Self>, error: StoreError);
}

/// What ran in the batch: its answers wait for the commit.
trait Ran: Send {
    fn succeeded(&self) -> bool;
    /// The stock move it owes, made with every other member's after the last of them.
    fn owed(&mut self) -> Option<OwedMove>;
    fn answer(self: Box<Self>, committed: Result<(), StoreError>);
    /// Its batch failed after it ran, before the commit: nothing of it stands.
    fn retry(self: Box<Self>, error: StoreError);
}

struct Queued<F, T, E> {
    work: F,
    reply: Reply<T, E>,
}

struct Done<T, E> {
    result: Result<T, E>,
    owed: Option<OwedMove>,
    reply: Reply<T, E>,
}

impl<F, Fut, T, E> Member for Queued<F, T, E>
where
    F: FnOnce(Tx) -> Fut + Send + 'static,
    Fut: Future<Output = (Tx, Result<(T, Option<OwedMove>), E>)> + Send + 'static,
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    fn run(self: Box<Self>, tx: Tx) -> BoxFuture<'static, (Tx, Box<dyn Ran>)> {
        let Queued { work, reply } = *self;
        Box::pin(async move {
            let (tx, result) = work(tx).await;
            let (result, owed) = match result {
                Ok((value, owed)) => (Ok(value), owed),
                Err(error) => (Err(error), None),
            };
            let done = Done {
                result,
                owed,
                reply,
            };
            (tx, Box::new(done) as Box<dyn Ran>)
        })
    }

    fn retry(self: Box<Self>, error: StoreError) {
        let _ = self.reply.send(Outcome::Retry(error));
    }
}

impl<T: Send, E: From<StoreError> + Send> Ran for Done<T, E> {
    fn succeeded(&self) -> bool {
        self.result.is_ok()
    }

    fn owed(&mut self) -> Option<OwedMove> {
        self.owed.take()
    }

    fn answer(self: Box<Self>, committed: Result<(), StoreError>) {
        let answer = match committed {
            Ok(()) => self.result,
            Err(error) => Err(E::from(error)),
        };
        // The caller may have gone (a dropped request): the transition stands regardless.
        let _ = self.reply.send(Outcome::Done(answer));
    }

    fn retry(self: Box<Self>, error: StoreError) {
        let _ = self.reply.send(Outcome::Retry(error));
    }
}

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
        if run_batch(&db, reservations, members).await {
            stats.batches.fetch_add(1, Ordering::Relaxed);
            stats.members.fetch_add(size, Ordering::Relaxed);
        }
    }
}

/// The batch's reservations, decided together.
struct Reservations {
    requests: Vec<Reservation>,
    replies: Vec<Reply<Order, CreateOrderError>>,
}

impl Reservations {
    fn retry(self, error: &StoreError) {
        for reply in self.replies {
            let _ = reply.send(Outcome::Retry(error.clone_error()));
        }
    }
}

/// The reservations as the set decided them, waiting for the commit; `failed` when the set
/// was rolled back to its savepoint (they are retried alone whatever the batch does).
struct Reserved {
    answers: Vec<Result<Order, CreateOrderError>>,
    replies: Vec<Reply<Order, CreateOrderError>>,
    failed: Option<StoreError>,
}

impl Ran for Reserved {
    fn succeeded(&self) -> bool {
        self.failed.is_none()
    }

    fn owed(&mut self) -> Option<OwedMove> {
        None
    }

    fn answer(self: Box<Self>, committed: Result<(), StoreError>) {
        if let Some(error) = self.failed {
            return Reservations {
                requests: Vec::new(),
                replies: self.replies,
            }
            .retry(&error);
        }
        for (answer, reply) in self.answers.into_iter().zip(self.replies) {
            let answer = match &committed {
                Ok(()) => answer,
                Err(error) => Err(error.clone_error().into()),
            };
            let _ = reply.send(Outcome::Done(answer));
        }
    }

    fn retry(self: Box<Self>, error: StoreError) {
        let error = self.failed.unwrap_or(error);
        Reservations {
            requests: Vec::new(),
            replies: self.replies,
        }
        .retry(&error);
    }
}

/// Runs one batch to its end and answers every member. Answers whether it committed.
async fn run_batch(db: &Database, reservations: Reservations, batch: Vec<Box<dyn Member>>) -> bool {
    let mut tx = match db.begin_write().await {
        Ok(tx) => tx,
        Err(error) => {
            reservations.retry(&error);
            retry_all(batch, Vec::new(), error);
            return false;
        }
    };
    let mut ran: Vec<Box<dyn Ran>> = Vec::with_capacity(batch.len() + 1);
    if !reservations.requests.is_empty() {
        match reserve_set(&mut tx, db, reservations, !batch.is_empty()).await {
            Ok(reserved) => ran.push(reserved),
            Err(error) => {
                // Without a savepoint (nothing else in the batch) the transaction is lost.
                retry_all(batch, ran, error);
                return false;
            }
        }
    }
    let mut pending = batch.into_iter();
    while let Some(member) = pending.next() {
        if let Err(error) = exec(&mut tx, "SAVEPOINT member").await {
            member.retry(error.clone_error());
            retry_all(pending.collect(), ran, error);
            return false;
        }
        // A member that panics takes the transaction with it (rolled back; its caller told
        // so, the others retried alone); the lane goes on, so one bug cannot stop every later
        // transition of the node.
        let Ok((back, done)) = AssertUnwindSafe(member.run(tx)).catch_unwind().await else {
            let error = StoreError::Other("a group-committed transition panicked".into());
            retry_all(pending.collect(), ran, error);
            return false;
        };
        tx = back;
        let close = if done.succeeded() {
            exec(&mut tx, "RELEASE SAVEPOINT member").await
        } else {
            // A failed statement leaves PostgreSQL's transaction aborted until this.
            match exec(&mut tx, "ROLLBACK TO SAVEPOINT member").await {
                Ok(()) => exec(&mut tx, "RELEASE SAVEPOINT member").await,
                Err(error) => Err(error),
            }
        };
        ran.push(done);
        if let Err(error) = close {
            retry_all(pending.collect(), ran, error);
            return false;
        }
    }
    // The members' stock moves last: a hot ticket type's row is locked once per batch, for
    // one statement and the commit. One that fails (a row without the stock its orders hold)
    // leaves nothing of the batch standing; each member then runs alone, and only the orders
    // of that row fail.
    let owed: Vec<OwedMove> = ran.iter_mut().filter_map(|done| done.owed()).collect();
    if let Err(error) = stock::settle(&mut tx, &owed).await {
        retry_all(Vec::new(), ran, error);
        return false;
    }
    let committed = tx.commit().await.map_err(store_error);
    let ok = committed.is_ok();
    for done in ran {
        done.answer(committed.clone_error());
    }
    ok
}

/// Makes the batch's reservations as one set. With other members in the batch the set gets
/// a savepoint, so a failed statement sends the reservations to be retried alone and the
/// batch goes on; `Err` means the transaction cannot go on (the reservations are answered).
async fn reserve_set(
    tx: &mut Tx,
    db: &Database,
    reservations: Reservations,
    others: bool,
) -> Result<Box<dyn Ran>, StoreError> {
    if others {
        if let Err(error) = exec(tx, "SAVEPOINT reservations").await {
            reservations.retry(&error);
            return Err(error);
        }
    }
    let Reservations { requests, replies } = reservations;
    let made = AssertUnwindSafe(reserve::reserve_all(tx, db.backend(), &requests))
        .catch_unwind()
        .await
        .unwrap_or_else(|_| Err(StoreError::Other("a batch of reservations panicked".into())));
    let (answers, failed, close) = match made {
        Ok(answers) => (answers, None, "RELEASE SAVEPOINT reservations"),
        Err(error) if others => (
            Vec::new(),
            Some(error),
            "ROLLBACK TO SAVEPOINT reservations",
        ),
        Err(error) => {
            let set = Reservations {
                requests: Vec::new(),
                replies,
            };
            set.retry(&error);
            return Err(error);
        }
    };
    let reserved = Box::new(Reserved {
        answers,
        replies,
        failed,
    });
    if others {
        let mut closed = exec(tx, close).await;
        if closed.is_ok() && reserved.failed.is_some() {
            closed = exec(tx, "RELEASE SAVEPOINT reservations").await;
        }
        if let Err(error) = closed {
            reserved.retry(error.clone_error());
            return Err(error);
        }
    }
    Ok(reserved)
}

async fn exec(tx: &mut Tx, sql: &str) -> Result<(), StoreError> {
    sqlx::query(sql)
        .execute(&mut **tx)
        .await
        .map(drop)
        .map_err(store_error)
}

/// The batch failed before its commit: every member, run or not, is told to run alone; the
/// transaction (if any) is dropped: rolled back.
fn retry_all(waiting: Vec<Box<dyn Member>>, ran: Vec<Box<dyn Ran>>, error: StoreError) {
    for done in ran {
        done.retry(error.clone_error());
    }
    for member in waiting {
        member.retry(error.clone_error());
    }
}

/// `StoreError` is not `Clone` (it is the port's); one failure answers many members.
trait CloneError {
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
