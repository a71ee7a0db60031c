//! The sandbox gateway on its own:
//! `cargo run --bin wallyt-sandbox -- --port 9090 --mch-id 7551000001 --key <key>`.

use clap::Parser;
use secrecy::SecretString;
use std::net::TcpListener;
use std::time::Duration;
use wallyt_pay::config::LogFormat;
use wallyt_pay::sandbox::{Sandbox, SandboxConfig};

#[derive(Parser)]
#[command(about = "A local imitation of the Wallyt gateway and of WeChat's jscode2session")]
struct Args {
    #[arg(long, default_value_t = 9090)]
    port: u16,
    #[arg(long, default_value = "127.0.0.1")]
    bind: String,
    #[arg(long, env = "WALLYT_MCH_ID", default_value = "7551000001")]
    mch_id: String,
    /// The merchant signing key (also read from WALLYT_SECRET_KEY).
    #[arg(long, env = "WALLYT_SECRET_KEY", hide_env_values = true)]
    key: String,
    #[arg(long, env = "WECHAT_MINI_APPID", default_value = "wxsandbox00000001")]
    appid: String,
    #[arg(
        long,
        env = "WECHAT_MINI_SECRET",
        hide_env_values = true,
        default_value = "sandbox-secret"
    )]
    app_secret: String,
    /// Multiplies the notify retry schedule (1.0 = the real 0/15/15/30/180/1800… seconds).
    #[arg(long, default_value_t = 1.0)]
    notify_time_scale: f64,
    /// Seconds a notify waits for the merchant's answer.
    #[arg(long, default_value_t = 5.0)]
    notify_timeout: f64,
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    wallyt_pay::telemetry::init(LogFormat::Pretty);
    let config = SandboxConfig {
        mch_id: args.mch_id,
        key: SecretString::from(args.key),
        appid: args.appid,
        app_secret: SecretString::from(args.app_secret),
        notify_time_scale: args.notify_time_scale.max(0.0),
        notify_timeout: Duration::from_secs_f64(args.notify_timeout.max(0.1)),
    };
    let listener = TcpListener::bind((args.bind.as_str(), args.port))?;
    tracing::info!(
        event = "sandbox.started",
        address = %listener.local_addr()?,
        mch_id = %config.mch_id,
        "gateway at /pay/gateway, controls at /sandbox/trades"
    );
    Sandbox::new(config).serve(listener)?.await
}
