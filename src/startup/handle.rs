//! Stopping a running application: the server, then what runs beside it.

use crate::engine::EngineHandle;

#[derive(Clone)]
pub struct AppHandle {
    pub(super) server: actix_web::dev::ServerHandle,
    pub(super) engine: EngineHandle,
    pub(super) purge: tokio::task::AbortHandle,
    pub(super) daily: Option<tokio::task::AbortHandle>,
}

impl AppHandle {
    /// Stops accepting requests, lets the running ones finish, then stops the engine.
    pub async fn stop(&self) {
        self.server.stop(true).await;
        self.stop_background();
    }

    /// Stops what runs beside the server (the engine's thread, the purge task) without
    /// waiting: for a caller that cannot await, e.g. a test dropping its app. The engine's
    /// thread holds a handle on the database pool; stopping it lets the pool close.
    pub fn stop_background(&self) {
        self.purge.abort();
        if let Some(daily) = &self.daily {
            daily.abort();
        }
        self.engine.stop();
    }

    /// Tells the server to stop at once (its workers let go of their database handles) and
    /// stops the background work, without waiting: for a caller that cannot await.
    pub fn stop_now(&self) {
        // actix sends the stop command when `stop` is called; the future only awaits it.
        drop(self.server.stop(false));
        self.stop_background();
    }
}
