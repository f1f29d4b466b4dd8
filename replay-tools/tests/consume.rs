//! `switchboard-replay consume` against the machine's NATS JetStream (127.0.0.1:4222): prints
//! each event once, one JSON line each, and a second run with the same durable name goes on
//! where the first stopped.

use std::process::Command;

use async_nats::jetstream::{self, stream};

const NATS_URL: &str = "nats://127.0.0.1:4222";

fn consume(stream: &str, durable: &str) -> Vec<serde_json::Value> {
    let output = Command::new(env!("CARGO_BIN_EXE_switchboard-replay"))
        .args([
            "consume",
            "--nats",
            NATS_URL,
            "--durable",
            durable,
            "--stream",
            stream,
        ])
        .args(["--idle-seconds", "1"])
        .output()
        .expect("switchboard-replay runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON event a line"))
        .collect()
}

#[tokio::test]
async fn consume_prints_each_event_once_and_resumes() {
    let id = std::process::id();
    let name = format!("CONSUME_TEST_{id}");
    let client = async_nats::connect(NATS_URL).await.expect("NATS");
    let context = jetstream::new(client);
    let _ = context.delete_stream(&name).await;
    context
        .create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![format!("consumetest{id}.>")],
            ..Default::default()
        })
        .await
        .expect("stream");
    let publish = |position: i64| {
        let context = context.clone();
        async move {
            let body = serde_json::json!({"position": position, "type": "ConversationStarted"});
            context
                .publish(
                    format!("consumetest{id}.Conversation.ConversationStarted"),
                    body.to_string().into(),
                )
                .await
                .expect("publish")
                .await
                .expect("acknowledged");
        }
    };
    for position in 1..=3 {
        publish(position).await;
    }
    let first = consume(&name, "check");
    let positions: Vec<i64> = first
        .iter()
        .map(|e| e["position"].as_i64().expect("position"))
        .collect();
    assert_eq!(positions, [1, 2, 3]);
    publish(4).await;
    let second = consume(&name, "check");
    assert_eq!(
        second.len(),
        1,
        "the durable consumer goes on where it stopped"
    );
    assert_eq!(second[0]["position"], 4);
    context.delete_stream(&name).await.expect("deleted");
}
