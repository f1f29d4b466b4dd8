//! `switchboard::fuzzing::outbound` under libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard::fuzzing::outbound(data));
