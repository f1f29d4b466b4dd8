//! The agent console end to end: `switchboard serve --sandbox` as a user starts it, driven in
//! Debian's Chromium by `tests/console/e2e.mjs` (playwright-core). Also: the two dictionaries
//! have the same keys, and every key the console uses is in them.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{install_node_packages, Backend, FreshDatabase};
use crate::on_both_backends;

fn console_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("console")
}

/// A running `serve --sandbox`, and what it printed on the terminal.
struct Served {
    child: Child,
    base_url: String,
    simulator_url: String,
    password: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the server binary as a new user would, with short-lived access tokens.
fn serve(fresh: &FreshDatabase, token_ttl: u64) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--sandbox", "--listen", "127.0.0.1:0"])
        .args(&fresh.cli_args)
        .env_remove("DATABASE_URL")
        .env("SWITCHBOARD_ACCESS_TOKEN_TTL", token_ttl.to_string())
        .env(
            "SWITCHBOARD_JWT_SECRET",
            "console-test-secret-of-at-least-32-bytes",
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("switchboard serve starts");
    // Read on a thread (which keeps draining the pipe, so the server never blocks on it).
    let stdout = child.stdout.take().expect("stdout");
    let (lines, printed) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let (mut base_url, mut simulator_url, mut password) = (None, None, None);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = printed
            .recv_timeout(left)
            .expect("the server prints its addresses within a minute");
        if let Some(rest) = line.split("one-time password: ").nth(1) {
            password = Some(rest.trim().to_owned());
        }
        if let Some(rest) = line.split("sign in at ").nth(1) {
            base_url = rest.split('/').take(3).collect::<Vec<_>>().join("/").into();
        }
        if let Some(rest) = line.split("Meta is simulated at ").nth(1) {
            let url = rest.split(". ").next().unwrap_or(rest);
            simulator_url = Some(url.trim_end_matches(['.', ' ']).to_owned());
        }
        if base_url.is_some() && simulator_url.is_some() && password.is_some() {
            break;
        }
    }
    Served {
        child,
        base_url: base_url.expect("the sign-in address is printed"),
        simulator_url: simulator_url.expect("the simulator's address is printed"),
        password: password.expect("the one-time password is printed"),
    }
}

/// Finishes the checkpoint the API suite's thousands of tables left PostgreSQL (CI saw one
/// spread over 270 s, fsyncing 45,000 files): the browser measures how fast a message reaches
/// the screen, and a commit stalled behind that I/O measures the disk instead.
async fn settle_postgres() {
    let url = crate::helpers::postgres_url().expect("DATABASE_URL");
    let admin = sqlx::PgPool::connect(&url)
        .await
        .expect("connect to PostgreSQL");
    if let Err(error) = sqlx::query("checkpoint").execute(&admin).await {
        println!("checkpoint not possible ({error}); measuring anyway");
    }
    admin.close().await;
}

/// One browser run at a time, and nothing else of this binary beside it: two Chromiums on two
/// cores would measure the machine, not the console.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn the_console_works_end_to_end_in_a_browser(backend: Backend) {
    let _browser = ONE_BROWSER.lock().await;
    let fresh = FreshDatabase::new(backend).await;
    if matches!(backend, Backend::Postgres) {
        settle_postgres().await;
    }
    let tests = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/console");
    install_node_packages(&tests, "playwright-core");
    let served = serve(&fresh, 20);
    // The README's screenshots come from the SQLite run (one set, kept current).
    let screenshots = matches!(backend, Backend::Sqlite)
        .then(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots"));
    if let Some(dir) = &screenshots {
        std::fs::create_dir_all(dir).expect("screenshot folder");
    }
    // `timeout`: a hung browser fails the test instead of holding CI.
    let output = Command::new("timeout")
        .args(["600", "node"])
        .arg(tests.join("e2e.mjs"))
        .env("BASE_URL", &served.base_url)
        .env("SIMULATOR_URL", &served.simulator_url)
        .env("ADMIN_EMAIL", "admin@switchboard.local")
        .env("ADMIN_PASSWORD", &served.password)
        .env("TOKEN_TTL", "20")
        .env(
            "SCREENSHOTS",
            screenshots
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
        )
        .output()
        .expect("node runs (install Node.js, and Debian's chromium for the console tests)");
    let report = String::from_utf8_lossy(&output.stdout);
    println!("{report}");
    assert!(
        output.status.success(),
        "the console's browser test failed:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn dictionary(lang: &str) -> serde_json::Map<String, serde_json::Value> {
    let path = console_dir().join(format!("i18n/{lang}.json"));
    let text = std::fs::read_to_string(&path).expect("dictionary");
    serde_json::from_str(&text).expect("dictionary is a JSON object")
}

/// The `t('key')` / `t(\`prefix.${…}\`)` keys the console's code names.
fn keys_used() -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut keys, mut prefixes) = (BTreeSet::new(), BTreeSet::new());
    for entry in std::fs::read_dir(console_dir().join("js")).expect("console/js") {
        let text = std::fs::read_to_string(entry.expect("file").path()).expect("source");
        for call in text.split("t(").skip(1) {
            let mut chars = call.chars();
            match chars.next() {
                Some('\'') => {
                    let key: String = chars.take_while(|c| *c != '\'').collect();
                    keys.insert(key);
                }
                Some('`') => {
                    let prefix: String = chars.take_while(|c| *c != '$' && *c != '`').collect();
                    prefixes.insert(prefix);
                }
                _ => {}
            }
        }
    }
    (keys, prefixes)
}

#[test]
fn both_languages_have_every_key_the_console_uses() {
    let english = dictionary("en");
    let spanish = dictionary("es");
    let en: BTreeSet<&String> = english.keys().collect();
    let es: BTreeSet<&String> = spanish.keys().collect();
    assert_eq!(
        en.symmetric_difference(&es).collect::<Vec<_>>(),
        Vec::<&&String>::new(),
        "keys in one dictionary only"
    );
    for (key, text) in &spanish {
        assert!(
            text.as_str().is_some_and(|t| !t.trim().is_empty()),
            "{key} is empty"
        );
    }
    let (keys, prefixes) = keys_used();
    assert!(keys.len() > 40, "the scan found the console's keys");
    for key in keys.iter().filter(|k| k.contains('.')) {
        assert!(en.contains(key), "{key} is used but not translated");
    }
    for prefix in prefixes.iter().filter(|p| p.ends_with('.')) {
        assert!(
            en.iter().any(|k| k.starts_with(prefix.as_str())),
            "no key starts with {prefix}"
        );
    }
}

async fn the_console_is_served_from_the_binary_with_a_strict_policy(backend: Backend) {
    let _browser = ONE_BROWSER.lock().await;
    let app = crate::helpers::TestApp::spawn(backend).await;
    let page = app
        .client
        .get(format!("{}/", app.address))
        .send()
        .await
        .expect("GET /");
    assert_eq!(page.status(), 200);
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .expect("policy")
        .to_owned();
    assert!(policy.contains("default-src 'self'") && policy.contains("script-src 'self'"));
    assert!(page.headers()["content-type"]
        .to_str()
        .is_ok_and(|t| t.starts_with("text/html")));
    assert!(page
        .text()
        .await
        .expect("body")
        .contains("/console/js/main.js"));

    let module = app
        .client
        .get(format!("{}/console/js/main.js", app.address))
        .send()
        .await
        .expect("GET module");
    assert_eq!(module.status(), 200);
    assert!(module.headers()["content-type"]
        .to_str()
        .is_ok_and(|t| t.starts_with("text/javascript")));
    let etag = module.headers()["etag"].clone();
    let again = app
        .client
        .get(format!("{}/console/js/main.js", app.address))
        .header("if-none-match", etag)
        .send()
        .await
        .expect("GET module again");
    assert_eq!(again.status(), 304, "unchanged files are not sent again");

    let missing = app
        .client
        .get(format!("{}/console/%2e%2e/Cargo.toml", app.address))
        .send()
        .await
        .expect("GET outside");
    assert_eq!(missing.status(), 404);
    let unknown = app
        .client
        .get(format!("{}/console/nothing.js", app.address))
        .send()
        .await
        .expect("GET unknown");
    assert_eq!(unknown.status(), 404);
    let body: serde_json::Value = unknown.json().await.expect("a JSON error");
    assert_eq!(body["error"]["code"], "not_found");
}

on_both_backends!(
    the_console_works_end_to_end_in_a_browser,
    the_console_is_served_from_the_binary_with_a_strict_policy,
);
