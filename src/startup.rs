//! Start-up: `Application::build(settings)` connects the database (applying migrations),
//! binds its own listener (port 0 in tests) and exposes the real port before it serves.

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use secrecy::SecretString;
use std::net::TcpListener;
use std::sync::Arc;
use tracing_actix_web::TracingLogger;
use wallyt_pay_actors::{Clock, SystemClock};

use crate::auth::JwtKeys;
use crate::config::Settings;
use crate::gateway::{http_client, wechat::WechatClient};
use crate::http::{rejections, routes};
use crate::storage::Database;

/// What every handler can reach. Cheap to clone: everything inside is shared.
pub struct AppState {
    pub db: Database,
    pub jwt: JwtKeys,
    pub admin_token: SecretString,
    pub wechat: WechatClient,
    pub clock: Arc<dyn Clock>,
}

pub struct Application {
    port: u16,
    server: Server,
    db: Database,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        for warning in &settings.warnings {
            tracing::warn!(event = "config.warning", "{warning}");
        }
        let db = Database::connect(&settings.database).await?;
        let http = http_client(&settings.outbound);
        let state = web::Data::new(AppState {
            db: db.clone(),
            jwt: JwtKeys::new(&settings.jwt_secret, settings.jwt_ttl),
            admin_token: settings.admin_token.clone(),
            wechat: WechatClient::new(&settings.wechat, http),
            clock: Arc::new(SystemClock),
        });

        let listener = TcpListener::bind(&settings.http_addr)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.http_addr))?;
        let port = listener.local_addr()?.port();
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(TracingLogger::default())
                .app_data(state.clone())
                .app_data(rejections::json_config())
                .app_data(rejections::path_config())
                .app_data(rejections::query_config())
                .app_data(web::PayloadConfig::new(rejections::MAX_BODY_BYTES))
                .configure(routes::configure)
        })
        .listen(listener)?;
        if settings.http_workers > 0 {
            server = server.workers(settings.http_workers);
        }
        tracing::info!(
            event = "app.started",
            port,
            env = settings.app_env.as_str(),
            backend = ?db.backend(),
        );
        Ok(Application {
            port,
            server: server.run(),
            db,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the process is told to stop (SIGINT/SIGTERM), then drains and closes.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        self.db.close().await;
        result
    }
}
