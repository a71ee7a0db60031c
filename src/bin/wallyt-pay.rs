//! The payment server: `cargo run --bin wallyt-pay`.

use std::process::ExitCode;
use wallyt_pay::config::Settings;
use wallyt_pay::startup::Application;
use wallyt_pay::telemetry;

#[actix_web::main]
async fn main() -> ExitCode {
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("wallyt-pay: refusing to start: {error}");
            return ExitCode::FAILURE;
        }
    };
    telemetry::init(settings.log_format);
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(error) => {
            tracing::error!(event = "app.start_failed", error = %error);
            eprintln!("wallyt-pay: could not start: {error}");
            return ExitCode::FAILURE;
        }
    };
    match app.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("wallyt-pay: server stopped with an error: {error}");
            ExitCode::FAILURE
        }
    }
}
