#![no_main]
//! `vdm_fuzz::targets::telemetry` under libFuzzer.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vdm_fuzz::targets::telemetry(data);
});
