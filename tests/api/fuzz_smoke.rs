//! The fuzzers' smoke run (issue #25): every parser facing clients or Meta
//! (`switchboard::fuzzing`) over every fixture and 20,000 deterministic mutations of them each,
//! on stable, in every CI run. Long coverage-guided runs: `fuzz/` (cargo fuzz, FUZZING in
//! BENCHMARKS.md).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Every fixture file's bytes, plus inputs shaped for each parser.
fn seeds() -> Vec<Vec<u8>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut seeds = Vec::new();
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).expect("fixtures").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                seeds.push(std::fs::read(path).expect("fixture"));
            }
        }
    }
    for text in [
        r#"{"type":"text","body":"hi","preview_url":true}"#,
        r#"{"type":"image","image":{"link":"https://example.com/a.jpg","caption":"x"}}"#,
        r#"{"type":"interactive","interactive":{"type":"button","body":{"text":"b"},"action":{"buttons":[{"type":"reply","reply":{"id":"1","title":"t"}}]}}}"#,
        r#"{"type":"template","template":{"name":"n","language":{"code":"es"},"components":[]}}"#,
        "1780000000000_0a0b-c0d0",
        "9223372036854775807_x",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhIiwic2lkIjoicyIsImlhdCI6MSwiZXhwIjoxfQ.c2ln",
        "Bearer eyJhbGciOiJub25lIn0.e30.",
    ] {
        seeds.push(text.as_bytes().to_vec());
    }
    seeds
}

/// One mutation of `input`: bit flips, cuts, insertions, repeats, splices, big numbers.
fn mutate(rng: &mut StdRng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..rng.gen_range(1..4) {
        let at = if out.is_empty() {
            0
        } else {
            rng.gen_range(0..out.len())
        };
        match rng.gen_range(0..7) {
            0 if !out.is_empty() => out[at] ^= 1 << rng.gen_range(0..8),
            1 => out.truncate(at),
            2 => {
                let bytes: Vec<u8> = (0..rng.gen_range(1..16)).map(|_| rng.gen()).collect();
                out.splice(at..at, bytes);
            }
            3 if !out.is_empty() => {
                let end = (at + rng.gen_range(1..64)).min(out.len());
                let piece = out[at..end].to_vec();
                for _ in 0..rng.gen_range(1..8) {
                    out.splice(at..at, piece.iter().copied());
                }
            }
            4 if !other.is_empty() => {
                let from = rng.gen_range(0..other.len());
                out.truncate(at);
                out.extend_from_slice(&other[from..]);
            }
            5 => {
                let big: &[u8] = [
                    &b"99999999999999999999999"[..],
                    b"-1",
                    b"1e309",
                    b"\"\\u0000\"",
                    b"null",
                    b"[]",
                    b"{}",
                ][rng.gen_range(0..7)];
                out.splice(at..at, big.iter().copied());
            }
            _ => {
                if let Some(byte) = out.get_mut(at) {
                    *byte =
                        [b'"', b'{', b'}', b'[', b']', b',', b':', b'_', b'.'][rng.gen_range(0..9)];
                }
            }
        }
    }
    out
}

/// One fuzzing entry point.
type Target = fn(&[u8]);

#[test]
fn every_parser_survives_fixtures_and_their_mutations() {
    let seeds = seeds();
    assert!(seeds.len() > 30, "{} seeds", seeds.len());
    let targets: [(&str, Target); 4] = [
        ("webhook", switchboard::fuzzing::webhook),
        ("outbound", switchboard::fuzzing::outbound),
        ("cursor", switchboard::fuzzing::cursor),
        ("token", switchboard::fuzzing::token),
    ];
    for (name, target) in targets {
        let mut rng = StdRng::seed_from_u64(25);
        for seed in &seeds {
            target(seed);
        }
        for _ in 0..20_000 {
            let input = &seeds[rng.gen_range(0..seeds.len())];
            let other = &seeds[rng.gen_range(0..seeds.len())];
            let mutated = mutate(&mut rng, input, other);
            let outcome = std::panic::catch_unwind(|| target(&mutated));
            assert!(
                outcome.is_ok(),
                "{name} panicked on {:?}",
                String::from_utf8_lossy(&mutated)
            );
        }
    }
}
