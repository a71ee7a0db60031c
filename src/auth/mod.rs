//! Who is calling: mini-program users carry our HS256 JWT, administrators the admin token.

pub mod jwt;

pub use jwt::{Claims, JwtKeys};
