//! A crawler over a simulated site: each page fetched pushes the links it finds into the
//! same `Group`, at most 8 requests run at a time, and every failure is printed with its
//! URL at the end. `asyncio.TaskGroup` with `create_task` from inside the tasks, in Rust.
//!
//! Run it with `cargo run --example crawl`.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use gather::{Group, Handle};

/// The site: each page's links, or the status it fails with. A fixed in-memory graph.
fn site() -> BTreeMap<&'static str, Result<Vec<&'static str>, u16>> {
    BTreeMap::from([
        ("/", Ok(vec!["/docs", "/blog", "/about"])),
        ("/docs", Ok(vec!["/docs/start", "/docs/api", "/"])),
        ("/docs/start", Ok(vec!["/docs/api", "/docs/install"])),
        ("/docs/api", Ok(vec!["/docs/api/group", "/docs/api/gather"])),
        ("/docs/api/group", Ok(vec!["/docs/api/handle"])),
        ("/docs/api/gather", Ok(vec![])),
        ("/docs/api/handle", Err(500)),
        ("/docs/install", Ok(vec!["/downloads"])),
        ("/blog", Ok(vec!["/blog/1", "/blog/2", "/blog/3"])),
        ("/blog/1", Ok(vec!["/blog/2"])),
        ("/blog/2", Err(503)),
        ("/blog/3", Ok(vec!["/old-post"])),
        ("/about", Ok(vec!["/"])),
    ])
}

/// Why a page could not be read.
#[derive(Debug)]
struct FetchError {
    url: String,
    status: u16,
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} answered {}", self.url, self.status)
    }
}

impl std::error::Error for FetchError {}

/// One request: a page of the site after a delay that depends on the URL; pages not on
/// the site are 404s.
async fn fetch(url: &str) -> Result<Vec<&'static str>, FetchError> {
    tokio::time::sleep(Duration::from_millis(5 + (url.len() as u64 * 7) % 20)).await;
    match site().get(url) {
        Some(Ok(links)) => Ok(links.clone()),
        Some(Err(status)) => Err(FetchError {
            url: url.to_string(),
            status: *status,
        }),
        None => Err(FetchError {
            url: url.to_string(),
            status: 404,
        }),
    }
}

/// A crawl job: it pushes a job for each link it has not seen yet, then reports its page.
type Job<'a> = Pin<Box<dyn Future<Output = Result<String, FetchError>> + 'a>>;

fn crawl<'a>(url: String, group: Handle<Job<'a>>, seen: Rc<RefCell<HashSet<String>>>) -> Job<'a> {
    Box::pin(async move {
        let links = fetch(&url).await?;
        for link in links {
            if seen.borrow_mut().insert(link.to_string()) {
                let job = crawl(link.to_string(), group.clone(), seen.clone());
                if group.push(job).is_err() {
                    unreachable!("the group runs while its children do");
                }
            }
        }
        Ok(url)
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let seen = Rc::new(RefCell::new(HashSet::from(["/".to_string()])));
    let mut group = Group::new().limit(8);
    let handle = group.handle();
    group.push(crawl("/".to_string(), handle, seen));

    // Awaited whole: every page found, in the order it was found (its index).
    let pages = group.await;
    println!(
        "crawled {} pages: {} read, {} failed",
        pages.len(),
        pages.success_count(),
        pages.error_count()
    );
    for (index, url) in pages.results().iter().enumerate() {
        if let Ok(url) = url {
            println!("  #{index:<2} {url}");
        }
    }
    println!("failures:");
    for (index, error) in pages.errors() {
        println!("  #{index:<2} {error}");
    }
    assert_eq!(pages.len(), 15);
    assert_eq!(pages.error_count(), 4);
}
