//! `UserStore` on SQL: users are upserted by openid at every login.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use wallyt_pay_actors::{StoreError, UnixMillis, User, UserStore};

use super::{column, store_error, Database};

fn user_from_row(row: &AnyRow) -> Result<User, StoreError> {
    Ok(User {
        id: column(row, "id")?,
        openid: column(row, "openid")?,
        unionid: column(row, "unionid")?,
    })
}

#[async_trait]
impl UserStore for Database {
    async fn upsert_user(
        &self,
        openid: &str,
        unionid: Option<&str>,
        now: UnixMillis,
    ) -> Result<User, StoreError> {
        // One statement: two first logins of the same openid racing each other both end with
        // the same row instead of one of them hitting the unique key.
        let row = sqlx::query(
            "INSERT INTO users (openid, unionid, created_at, last_login_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (openid) DO UPDATE SET \
               last_login_at = excluded.last_login_at, \
               unionid = COALESCE(excluded.unionid, users.unionid) \
             RETURNING id, openid, unionid",
        )
        .bind(openid)
        .bind(unionid)
        .bind(now.0)
        .bind(now.0)
        .fetch_one(self.pool())
        .await
        .map_err(store_error)?;
        user_from_row(&row)
    }

    async fn find_user(&self, id: i64) -> Result<Option<User>, StoreError> {
        sqlx::query("SELECT id, openid, unionid FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(store_error)?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }
}
