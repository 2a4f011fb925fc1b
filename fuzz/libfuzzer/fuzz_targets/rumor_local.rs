#![no_main]
//! `vdm_fuzz::targets::rumor_local` under libFuzzer.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vdm_fuzz::targets::rumor_local(data);
});
