//! The sandbox gateway on its own:
//! `cargo run --bin wallyt-sandbox -- --port 9090 --mch-id 7551000001 --key <key>`, or in
//! RSA_1_256 mode `--sign-type RSA_1_256 --platform-private-key-file <pem>
//! --merchant-public-key-file <pem>` (the platform's private key signs replies and notifies,
//! the merchant's public key verifies requests — the mirror image of the engine's settings).

use clap::Parser;
use secrecy::SecretString;
use std::net::TcpListener;
use std::time::Duration;
use wallyt_pay::config::LogFormat;
use wallyt_pay::gateway::wallyt::keys::{parse_private_key, parse_public_key};
use wallyt_pay::gateway::wallyt::sign::{RsaKeys, SignType};
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
    /// MD5 (also accepts SHA256 requests) or RSA_1_256.
    #[arg(long, default_value = "MD5")]
    sign_type: String,
    /// The merchant signing key for MD5/SHA256 (also read from WALLYT_SECRET_KEY).
    #[arg(long, env = "WALLYT_SECRET_KEY", hide_env_values = true)]
    key: Option<String>,
    /// RSA_1_256: the platform's private key (PEM or base64, PKCS#1 or PKCS#8).
    #[arg(long)]
    platform_private_key_file: Option<std::path::PathBuf>,
    /// RSA_1_256: the merchant's public key (SPKI, PEM or base64).
    #[arg(long)]
    merchant_public_key_file: Option<std::path::PathBuf>,
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
    let (key, rsa) = keys(&args).map_err(|e| std::io::Error::other(e.to_string()))?;
    let config = SandboxConfig {
        mch_id: args.mch_id,
        key,
        rsa,
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

/// The MD5 key, or the RSA keys; the ones of the other sign type are refused, as the engine
/// refuses them.
fn keys(args: &Args) -> anyhow::Result<(SecretString, Option<RsaKeys>)> {
    let sign_type = SignType::parse(&args.sign_type.to_ascii_uppercase())?;
    let rsa_files = (
        &args.platform_private_key_file,
        &args.merchant_public_key_file,
    );
    match sign_type {
        SignType::Md5 | SignType::Sha256 => {
            anyhow::ensure!(
                rsa_files.0.is_none() && rsa_files.1.is_none(),
                "the RSA key files are for --sign-type RSA_1_256"
            );
            let key = args.key.clone().ok_or_else(|| {
                anyhow::anyhow!(
                    "--key (or WALLYT_SECRET_KEY) is required for {}",
                    args.sign_type
                )
            })?;
            Ok((SecretString::from(key), None))
        }
        SignType::Rsa256 => {
            anyhow::ensure!(args.key.is_none(), "--key is not used with RSA_1_256");
            let (Some(private), Some(public)) = rsa_files else {
                anyhow::bail!(
                    "RSA_1_256 needs --platform-private-key-file and --merchant-public-key-file"
                );
            };
            let read = |path: &std::path::Path| {
                std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {}", path.display(), e.kind()))
            };
            let rsa = RsaKeys {
                own: parse_private_key(&read(private)?, "--platform-private-key-file")?,
                peer: parse_public_key(&read(public)?, "--merchant-public-key-file")?,
            };
            // The MD5 key is never accepted in RSA mode; a random one keeps the type simple.
            let unused = format!("{:032x}", rand::random::<u128>());
            Ok((SecretString::from(unused), Some(rsa)))
        }
    }
}
