#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| callmux_record::fuzzing::ogg_scan(data));
