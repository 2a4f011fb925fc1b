#![no_main]
//! `vdm_fuzz::targets::body_msgpack` under libFuzzer.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vdm_fuzz::targets::body_msgpack(data);
});
