//! Reading an upstream reply with a byte cap. `Content-Length` alone is no cap: a chunked
//! reply has none, and a misbehaving (or impersonated) upstream could stream until memory runs
//! out. The body is read chunk by chunk and abandoned as soon as it passes the limit.

/// Why a reply could not be read.
#[derive(Debug)]
pub enum ReadError {
    TooLarge { limit: usize },
    Transport(reqwest::Error),
}

/// The whole body, or `TooLarge` as soon as more than `limit` bytes have arrived.
pub async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, ReadError> {
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(ReadError::TooLarge { limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Transport)? {
        if body.len() + chunk.len() > limit {
            // Dropping the response closes the connection instead of draining it.
            return Err(ReadError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
