#![no_main]
//! `vdm_fuzz::targets::ws_envelope` under libFuzzer.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vdm_fuzz::targets::ws_envelope(data);
});
