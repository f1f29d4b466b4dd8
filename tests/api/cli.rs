//! The command line: `switchboard agent create --password-stdin`.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::helpers::{Backend, FreshDatabase, TestApp};
use crate::on_both_backends;

async fn an_agent_created_on_the_command_line_can_log_in(backend: Backend) {
    let fresh = FreshDatabase::new(backend).await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "agent",
            "create",
            "--email",
            "Root@Example.com",
            "--name",
            "Root",
            "--role",
            "admin",
            "--password-stdin",
        ])
        .args(&fresh.cli_args)
        .env_remove("DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("switchboard runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"a long enough password\n")
        .expect("password written");
    let output = child.wait_with_output().expect("switchboard exits");
    assert!(
        output.status.success(),
        "agent create failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("root@example.com"));

    // The server finds an agent already, so creates no first admin; the new one logs in.
    let app = TestApp::spawn_on(
        fresh,
        (
            "root@example.com".to_owned(),
            "a long enough password".to_owned(),
        ),
    )
    .await;
    assert_eq!(app.get("/api/agents").await.status(), 200);
}

on_both_backends!(an_agent_created_on_the_command_line_can_log_in);
