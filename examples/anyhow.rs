//! Application code with `anyhow`: twenty calls whose errors are `anyhow::Error`s, every
//! failure reported at once by one `?`, with context on top.
//!
//! Run it with `cargo run --example anyhow`.

use anyhow::{bail, Context, Result};
use gather::gather;

async fn fetch_user(id: u32) -> Result<String> {
    if id % 7 == 3 {
        bail!("user {id}: not found");
    }
    Ok(format!("user {id}"))
}

/// Every user, or every failure at once.
async fn team_page(ids: &[u32]) -> Result<Vec<String>> {
    let calls: Vec<_> = ids.iter().map(|&id| fetch_user(id)).collect();
    let users = gather(calls)
        .await
        .into_result()
        .context("loading the team page")?;
    Ok(users)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let everyone: Vec<u32> = (0..20).collect();
    match team_page(&everyone).await {
        Ok(users) => println!("{} users", users.len()),
        // `{:#}`: the context, then the compound error, each failure named once.
        Err(error) => println!("error: {error:#}"),
    }
    let team = team_page(&[0, 1, 2]).await.expect("no failing id");
    println!("{team:?}");
}
