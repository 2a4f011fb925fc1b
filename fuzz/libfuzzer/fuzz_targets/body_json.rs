#![no_main]
//! `vdm_fuzz::targets::body_json` under libFuzzer.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vdm_fuzz::targets::body_json(data);
});
