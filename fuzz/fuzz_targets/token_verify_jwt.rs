#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| callmux_token::fuzzing::verify_token(data));
