//! What a batch is made of: queued jobs, members that ran and wait for the commit, and the
//! reservations decided as a set; each knows how to be answered or sent to run alone.

use futures_util::future::BoxFuture;
use std::future::Future;
use wallyt_pay_actors::ports::CreateOrderError;
use wallyt_pay_actors::{Order, StoreError};

use super::{CloneError, Outcome, Reply, Tx};
use crate::storage::reserve::Reservation;
use crate::storage::stock::OwedMove;

/// What callers queue: a reservation, or any other transition.
pub(super) enum Job {
    Reserve(Reservation, Reply<Order, CreateOrderError>),
    Member(Box<dyn Member>),
}

/// A queued member: its work, and how to answer it.
pub(super) trait Member: Send {
    fn run(self: Box<Self>, tx: Tx) -> BoxFuture<'static, (Tx, Box<dyn Ran>)>;
    /// Its batch failed before it ran.
    fn retry(self: Box<Self>, error: StoreError);
}

/// What ran in the batch: its answers wait for the commit.
pub(super) trait Ran: Send {
    fn succeeded(&self) -> bool;
    /// The stock move it owes, made with every other member's after the last of them.
    fn owed(&mut self) -> Option<OwedMove>;
    fn answer(self: Box<Self>, committed: Result<(), StoreError>);
    /// Its batch failed after it ran, before the commit: nothing of it stands.
    fn retry(self: Box<Self>, error: StoreError);
}

pub(super) struct Queued<F, T, E> {
    pub(super) work: F,
    pub(super) reply: Reply<T, E>,
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

/// The batch's reservations, decided together.
pub(super) struct Reservations {
    pub(super) requests: Vec<Reservation>,
    pub(super) replies: Vec<Reply<Order, CreateOrderError>>,
}

impl Reservations {
    pub(super) fn retry(self, error: &StoreError) {
        for reply in self.replies {
            let _ = reply.send(Outcome::Retry(error.clone_error()));
        }
    }
}

/// The reservations as the set decided them, waiting for the commit; `failed` when the set
/// was rolled back to its savepoint (they are retried alone whatever the batch does).
pub(super) struct Reserved {
    pub(super) answers: Vec<Result<Order, CreateOrderError>>,
    pub(super) replies: Vec<Reply<Order, CreateOrderError>>,
    pub(super) failed: Option<StoreError>,
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
