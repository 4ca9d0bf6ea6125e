#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| callmux_record::fuzzing::mp3_scan(data));
