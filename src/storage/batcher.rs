//! Group commit. A commit costs a WAL flush and a round trip whatever it carries, and with
//! many orders paid or reserved at once the database spends its time flushing. The batcher
//! is one task owning a queue of store transitions: it takes what is queued (what arrived
//! while the last batch was committing — no timer, so a lone request waits for nothing), runs
//! each member in one transaction under its own SAVEPOINT, commits once, and only then
//! answers every member.
//!
//! Each member is the very transition the store would run in a transaction of its own: it
//! checks its own fence and guards. A member that fails (fenced, refused, a statement error)
//! is rolled back to its savepoint alone and answered its error; the others are unaffected.
//! A failed commit (or a failure around the savepoints) fails every member with that error,
//! members whose answer was a refusal included: their refusal may rest on another member's
//! write that is now gone. Nobody is answered before the batch's fate is known, so every
//! answered transition is durable.
//!
//! Reservations (`POST /orders`) are not run one by one: the batch's reservations are made
//! as one set, first, under a savepoint of their own (`storage::reserve`), so a hot ticket
//! type's row is locked and moved once per batch rather than once per order.
//!
//! Lanes: a batcher may run several batches at once, each on its own connection (payments
//! on PostgreSQL, where a batch's round trips, not its flush, are the cost). Their members are
//! different orders (each order's actor sends one transition at a time), and a batch of
//! payments locks stock rows only at its end, in ticket type order (`stock::settle`), so two
//! lanes do not wait on each other in a cycle. Reservations, which lock stock rows first, get
//! a batcher of one lane of their own whenever payments have several. The one exception is a
//! late payment reviving its expired order (its stock is taken back at once, all or nothing):
//! a cycle it closed would be broken by PostgreSQL's deadlock detection, failing one batch
//! whole, whose notifies are answered `fail` and come again.

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

/// What callers queue: a reservation, or any other transition.
enum Job {
    Reserve(Reservation, Reply<Order, CreateOrderError>),
    Member(Box<dyn Member>),
}

type Reply<T, E> = oneshot::Sender<Result<T, E>>;

/// A queued member: its work, and how to answer it.
trait Member: Send {
    fn run(self: Box<Self>, tx: Tx) -> BoxFuture<'static, (Tx, Box<dyn Ran>)>;
    fn fail(self: Box<Self>, error: StoreError);
}

/// A member that ran: its result waits for the commit.
trait Ran: Send {
    fn succeeded(&self) -> bool;
    /// The stock move it owes, made with every other member's after the last of them.
    fn owed(&mut self) -> Option<OwedMove>;
    fn answer(self: Box<Self>, committed: Result<(), StoreError>);
}

struct Queued<F, T, E> {
    work: F,
    reply: oneshot::Sender<Result<T, E>>,
}

struct Done<T, E> {
    result: Result<T, E>,
    owed: Option<OwedMove>,
    reply: oneshot::Sender<Result<T, E>>,
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

    fn fail(self: Box<Self>, error: StoreError) {
        let _ = self.reply.send(Err(E::from(error)));
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
        let _ = self.reply.send(answer);
    }
}

/// How many batches and members were committed (for the metrics and the tests).
#[derive(Debug, Default)]
pub struct BatchStats {
    pub batches: AtomicU64,
    pub members: AtomicU64,
}

/// The handle callers submit transitions through. Cheap to clone; the task stops when the
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
    pub async fn run<F, Fut, T, E>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(Tx) -> Fut + Send + 'static,
        Fut: Future<Output = (Tx, Result<(T, Option<OwedMove>), E>)> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let stopped = || E::from(StoreError::Unavailable("group commit stopped".into()));
        self.queue
            .send(Job::Member(Box::new(Queued { work, reply })))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Reserves `request` with the next batch's reservations; answers once that batch has
    /// committed.
    pub(crate) async fn reserve(&self, request: Reservation) -> Result<Order, CreateOrderError> {
        let (reply, answer) = oneshot::channel();
        let stopped =
            || CreateOrderError::from(StoreError::Unavailable("group commit stopped".into()));
        self.queue
            .send(Job::Reserve(request, reply))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
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

/// The reservations made, waiting for the commit.
struct Reserved {
    answers: Vec<Result<Order, CreateOrderError>>,
    replies: Vec<Reply<Order, CreateOrderError>>,
}

impl Ran for Reserved {
    fn succeeded(&self) -> bool {
        true
    }

    fn owed(&mut self) -> Option<OwedMove> {
        None
    }

    fn answer(self: Box<Self>, committed: Result<(), StoreError>) {
        for (answer, reply) in self.answers.into_iter().zip(self.replies) {
            let answer = match &committed {
                Ok(()) => answer,
                Err(error) => Err(error.clone_error().into()),
            };
            let _ = reply.send(answer);
        }
    }
}

impl Reservations {
    fn fail(self, error: &StoreError) {
        for reply in self.replies {
            let _ = reply.send(Err(error.clone_error().into()));
        }
    }
}

/// Runs one batch to its end and answers every member. Answers whether it committed.
async fn run_batch(db: &Database, reservations: Reservations, batch: Vec<Box<dyn Member>>) -> bool {
    let mut tx = match db.begin_write().await {
        Ok(tx) => tx,
        Err(error) => {
            reservations.fail(&error);
            fail_all(batch, Vec::new(), error);
            return false;
        }
    };
    let mut ran: Vec<Box<dyn Ran>> = Vec::with_capacity(batch.len() + 1);
    if !reservations.requests.is_empty() {
        match reserve_set(&mut tx, db, reservations, !batch.is_empty()).await {
            Ok(reserved) => ran.push(reserved),
            Err(error) => {
                // Without a savepoint (nothing else in the batch) the transaction is lost.
                fail_all(batch, ran, error);
                return false;
            }
        }
    }
    let mut pending = batch.into_iter();
    while let Some(member) = pending.next() {
        if let Err(error) = exec(&mut tx, "SAVEPOINT member").await {
            member.fail(error.clone_error());
            fail_all(pending.collect(), ran, error);
            return false;
        }
        // A member that panics takes the transaction with it (rolled back); the task goes on,
        // so one bug cannot stop every later transition of the node.
        let Ok((back, done)) = AssertUnwindSafe(member.run(tx)).catch_unwind().await else {
            let error = StoreError::Other("a group-committed transition panicked".into());
            fail_all(pending.collect(), ran, error);
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
            fail_all(pending.collect(), ran, error);
            return false;
        }
    }
    // The members' stock moves last: a hot ticket type's row is locked once per batch, for
    // one statement and the commit. A move that fails means inconsistent data: nobody's
    // transition stands.
    let owed: Vec<OwedMove> = ran.iter_mut().filter_map(|done| done.owed()).collect();
    if let Err(error) = stock::settle(&mut tx, &owed).await {
        fail_all(Vec::new(), ran, error);
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
/// a savepoint, so a failed statement fails the reservations alone; `Err` means the
/// transaction cannot go on (its reservations have been answered).
async fn reserve_set(
    tx: &mut Tx,
    db: &Database,
    reservations: Reservations,
    others: bool,
) -> Result<Box<dyn Ran>, StoreError> {
    if others {
        if let Err(error) = exec(tx, "SAVEPOINT reservations").await {
            reservations.fail(&error);
            return Err(error);
        }
    }
    let Reservations { requests, replies } = reservations;
    let failed = |replies, error: &StoreError| {
        Reservations {
            requests: Vec::new(),
            replies,
        }
        .fail(error)
    };
    let made = AssertUnwindSafe(reserve::reserve_all(tx, db.backend(), &requests))
        .catch_unwind()
        .await
        .unwrap_or_else(|_| Err(StoreError::Other("a batch of reservations panicked".into())));
    match made {
        Ok(answers) => {
            if others {
                if let Err(error) = exec(tx, "RELEASE SAVEPOINT reservations").await {
                    failed(replies, &error);
                    return Err(error);
                }
            }
            Ok(Box::new(Reserved { answers, replies }))
        }
        Err(error) if others => {
            let undone = match exec(tx, "ROLLBACK TO SAVEPOINT reservations").await {
                Ok(()) => exec(tx, "RELEASE SAVEPOINT reservations").await,
                Err(undo) => Err(undo),
            };
            let answers = requests.iter().map(|_| Err(error.clone_error().into()));
            let reserved = Reserved {
                answers: answers.collect(),
                replies,
            };
            match undone {
                Ok(()) => Ok(Box::new(reserved)),
                Err(undo) => {
                    Box::new(reserved).answer(Err(undo.clone_error()));
                    Err(undo)
                }
            }
        }
        Err(error) => {
            failed(replies, &error);
            Err(error)
        }
    }
}

async fn exec(tx: &mut Tx, sql: &str) -> Result<(), StoreError> {
    sqlx::query(sql)
        .execute(&mut **tx)
        .await
        .map(drop)
        .map_err(store_error)
}

/// Every member, run or not, gets `error`; the transaction (if any) is dropped: rolled back.
fn fail_all(waiting: Vec<Box<dyn Member>>, ran: Vec<Box<dyn Ran>>, error: StoreError) {
    for done in ran {
        done.answer(Err(error.clone_error()));
    }
    for member in waiting {
        member.fail(error.clone_error());
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
